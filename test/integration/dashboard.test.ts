/**
 * The web dashboard in a real browser (Debian's chromium, driven by playwright-core): a node with
 * functions, traffic, a queue with dead letters, a database, a key-value store and a bucket; the
 * pages load without console errors and show live data; the traffic split and the DLQ redrive
 * work from the page; the SQL console refuses writes (and so does its route, whatever the SQL).
 * In `kylix server` mode the page asks for the token and the API still refuses requests without it.
 * With KYLIX_SCREENSHOTS=1 it saves docs/images/dashboard-*.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { WEB_DIR } from '../../src/dashboard/static.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const CHROMIUM = process.env.KYLIX_CHROMIUM ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set KYLIX_CHROMIUM)`
  : !existsSync(join(WEB_DIR, 'index.html'))
    ? 'the dashboard is not built (node scripts/build.mjs)'
    : false;
if (skip) console.log(`# skipping the dashboard suite: ${skip}`);

const SHOTS = process.env.KYLIX_SCREENSHOTS === '1';
const IMAGES = new URL('../../docs/images/', import.meta.url).pathname;

const MANIFESTS = (version: string) =>
  [
    'apiVersion: kylix.dev/v1',
    'kind: KeyValue',
    'metadata: { name: flags }',
    'spec: {}',
    '---',
    'apiVersion: kylix.dev/v1',
    'kind: Queue',
    'metadata: { name: jobs }',
    'spec: {}',
    '---',
    'apiVersion: kylix.dev/v1',
    'kind: Queue',
    'metadata: { name: jobs-dlq }',
    'spec: {}',
    '---',
    'apiVersion: kylix.dev/v1',
    'kind: Database',
    'metadata: { name: shop }',
    'spec: {}',
    '---',
    'apiVersion: kylix.dev/v1',
    'kind: Bucket',
    'metadata: { name: uploads }',
    'spec: {}',
    '---',
    functionManifest('hello', './hello.ts', ['/hello', '/boom'], `  env:\n    VERSION: "${version}"`),
    '---',
    functionManifest(
      'worker',
      './worker.ts',
      ['/worker'],
      [
        '  bindings:',
        '    FLAGS: { keyValue: flags }',
        '  triggers:',
        '    queue: { name: jobs, batchSize: 10, maxRetries: 0, deadLetter: jobs-dlq }',
      ].join('\n'),
    ),
  ].join('\n');

const FILES = {
  'hello.ts': `export default { fetch(req, env) {
    if (new URL(req.url).pathname === '/boom') throw new Error('boom');
    console.log('hello from', env.VERSION, new URL(req.url).searchParams.get('id') ?? '');
    return new Response('hello ' + env.VERSION);
  } };\n`,
  // Fails every message while the flag "broken" is set: they go to the dead-letter queue.
  'worker.ts': `export default {
    async fetch() { return new Response('worker'); },
    async queue(batch, env) {
      if ((await env.FLAGS.get('broken')) === '1') throw new Error('the worker is broken');
      for (const m of batch.messages) await env.FLAGS.put('done-' + m.body.n, '1');
    },
  };\n`,
};

describe('dashboard', { skip }, () => {
  let node: TestNode;
  let browser: Browser;
  let api: string;
  const ns = '/apis/kylix.dev/v1/namespaces/default';
  const call = (path: string, init?: RequestInit) => fetch(`${api}${ns}${path}`, init);
  const post = (path: string, body: unknown) =>
    call(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const queueReady = async (name: string) =>
    ((await (await call(`/queues/${name}/stats`)).json()) as { ready: number }).ready;

  /** A page that fails the test on any console error or uncaught exception. */
  async function open(path: string, allowed: RegExp[] = []): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !allowed.some((a) => a.test(m.text()))) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${api}${path}`);
    return { page, errors };
  }

  before(async () => {
    node = await startNode({ consumer: { waitMs: 50, backoffBaseSeconds: 0.05 } });
    api = node.platform.apiUrl;
    const dir = writeProject({ 'kylix.yaml': MANIFESTS('one'), ...FILES });
    assert.ok((await apply(node, dir)).ok);
    // Data: a key, an object, a table with rows; dead letters made by the broken worker.
    assert.equal((await call('/keyvalues/flags/keys/broken', { method: 'PUT', body: '1' })).status, 204);
    assert.equal(
      (await call('/buckets/uploads/objects/reports/2026.csv', { method: 'PUT', body: 'a,b\n' })).status,
      201,
    );
    const sql = await post('/databases/shop/query', {
      sql: 'CREATE TABLE orders (id int PRIMARY KEY, item text); ',
    });
    assert.equal(sql.status, 200, await sql.text());
    assert.equal(
      (await post('/databases/shop/query', { sql: "INSERT INTO orders VALUES (1, 'tea'), (2, 'cake')" }))
        .status,
      200,
    );
    for (const n of [1, 2, 3])
      assert.equal((await post('/queues/jobs/messages', { body: { n } })).status, 204);
    await eventually(async () => (await queueReady('jobs-dlq')) === 3, 20_000, 50);
    // Traffic: successes and errors.
    for (let i = 0; i < 20; i++) assert.equal((await fetch(node.url('/hello'))).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await fetch(node.url('/boom'))).status, 502);
    browser = await chromium.launch({ executablePath: CHROMIUM });
    if (SHOTS) mkdirSync(IMAGES, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await node?.destroy();
  });

  it('serves the page with a strict CSP and no inline script, and keeps the API as it was', async () => {
    const res = await fetch(`${api}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is a file');
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
    assert.equal((await fetch(`${api}/dashboard/assets/nothing.js`)).status, 404);
    assert.equal((await fetch(`${api}/dashboard/assets/index.html`)).status, 404);
  });

  it('lists the functions with status, routes and traffic, and the events', async () => {
    const { page, errors } = await open('/');
    const row = page.locator('table.functions tr', { hasText: 'hello' });
    await row.waitFor();
    assert.match(await row.innerText(), /Ready[\s\S]*\/hello[\s\S]*r1 100%/);
    await page.locator('table.events td', { hasText: 'RevisionReady' }).first().waitFor();
    if (SHOTS) await page.screenshot({ path: join(IMAGES, 'dashboard-functions.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("shows a function's charts from live traffic, its revisions, log tail and events", async () => {
    const { page, errors } = await open('/#/functions/hello');
    await page.locator('figure.chart[data-chart="Requests/s"] canvas').waitFor();
    for (const title of ['Latency', 'Errors', 'Cold starts', 'Instances'])
      await page.locator(`figure.chart[data-chart="${title}"] canvas`).waitFor();
    // The figures behind the charts: the 23 requests, 3 of them errors.
    const history = (await (await call('/functions/hello/metrics-history')).json()) as {
      requestsPerSecond: number[];
      errors: number[];
      p99Ms: (number | null)[];
    };
    assert.equal(
      history.errors.reduce((a, b) => a + b, 0),
      3,
    );
    assert.ok(history.requestsPerSecond.some((v) => v > 0));
    assert.ok(history.p99Ms.some((v) => v !== null && v > 0));
    // The log tail streams: a request made now appears without a reload.
    await page.locator('pre.logs', { hasText: 'GET /hello 200' }).waitFor();
    await fetch(node.url('/hello?id=live-42'));
    await page.locator('pre.logs', { hasText: 'hello from one live-42' }).waitFor();
    if (SHOTS) await page.screenshot({ path: join(IMAGES, 'dashboard-function.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('changes the traffic split from the page', async () => {
    // A second revision: new code settings, applied as a user would.
    const dir = writeProject({ 'kylix.yaml': MANIFESTS('two'), ...FILES });
    assert.ok((await apply(node, dir)).ok);
    const { page, errors } = await open('/#/functions/hello');
    const second = page.locator('input[name="percent-2"]');
    await second.waitFor();
    await page.locator('.traffic td', { hasText: '100%' }).waitFor();
    await page.fill('input[name="percent-1"]', '70');
    await second.fill('30');
    await page.click('button:has-text("Apply split")');
    await page.locator('text=Traffic split applied.').waitFor();
    const fn = (await (await call('/functions/hello')).json()) as {
      spec: { traffic?: unknown };
      status: { traffic?: { revision: number; percent: number }[] };
    };
    assert.deepEqual(fn.spec.traffic, [
      { revision: 1, percent: 70 },
      { revision: 2, percent: 30 },
    ]);
    await eventually(async () => {
      const f = (await (await call('/functions/hello')).json()) as typeof fn;
      return JSON.stringify(f.status.traffic?.map((t) => [t.revision, t.percent])) === '[[1,70],[2,30]]';
    });
    // The gateway splits: both revisions answer.
    const seen = new Set<string>();
    await eventually(async () => {
      seen.add(await (await fetch(node.url('/hello'))).text());
      return seen.has('hello one') && seen.has('hello two');
    }, 15_000);
    await page.locator('[data-testid="traffic"]', { hasText: 'r1 70% · r2 30%' }).waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('redrives dead letters from the page, and shows keys, objects and rows', async () => {
    // The worker is fixed; the dead letters can go back.
    assert.equal((await call('/keyvalues/flags/keys/broken', { method: 'DELETE' })).status, 204);
    const { page, errors } = await open('/#/data');
    const dlq = page.locator('tr[data-queue="jobs-dlq"]');
    await dlq.locator('td.ready', { hasText: '3' }).waitFor();
    await dlq.locator('button', { hasText: 'Redrive to jobs' }).click();
    await page.locator('text=Moved 3 messages from jobs-dlq to jobs.').waitFor();
    assert.equal(await queueReady('jobs-dlq'), 0);
    // The redriven messages reach the (now working) worker.
    await eventually(
      async () => {
        const keys = (await (await call('/keyvalues/flags/keys?prefix=done-')).json()) as { keys: unknown[] };
        return keys.keys.length === 3;
      },
      20_000,
      50,
    );
    await dlq.locator('td.ready', { hasText: '0' }).waitFor();
    // The key browser shows the worker's keys and a value; the bucket its objects by folder.
    await page.reload();
    await page.locator('.keys button', { hasText: 'done-1' }).click();
    await page.locator('.value pre', { hasText: '1' }).waitFor();
    await page.locator('button', { hasText: 'reports/' }).click();
    await page.locator('td.mono', { hasText: 'reports/2026.csv' }).waitFor();
    await page.locator('.sql textarea').fill('SELECT * FROM orders ORDER BY id');
    await page.click('.sql button:has-text("Run")');
    await page.locator('.sql .result td', { hasText: 'tea' }).waitFor();
    if (SHOTS) await page.screenshot({ path: join(IMAGES, 'dashboard-data.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('runs reads in the SQL console and refuses writes, on the server', async () => {
    const { page, errors } = await open('/#/data', [/status of 400/]);
    const sql = page.locator('textarea[name="sql"]');
    await sql.fill('SELECT item FROM orders ORDER BY id');
    await page.click('.sql button:has-text("Run")');
    await page.locator('.sql .result td', { hasText: 'cake' }).waitFor();
    await sql.fill("INSERT INTO orders VALUES (3, 'pie')");
    await page.click('.sql button:has-text("Run")');
    await page.locator('[data-testid="sql-error"]', { hasText: 'read-only' }).waitFor();
    assert.deepEqual(errors, []);
    await page.close();
    // Past the statement check, PostgreSQL's READ ONLY transaction refuses the write.
    const cte = await post('/databases/shop/read-query', {
      sql: "WITH x AS (INSERT INTO orders VALUES (4, 'jam') RETURNING id) SELECT * FROM x",
    });
    assert.equal(cte.status, 400);
    assert.match(((await cte.json()) as { message: string }).message, /read-only transaction/);
    const twoStatements = await post('/databases/shop/read-query', {
      sql: "SELECT 1; COMMIT; INSERT INTO orders VALUES (5, 'bun')",
    });
    assert.equal(twoStatements.status, 400);
    const setRw = await post('/databases/shop/read-query', { sql: 'SET TRANSACTION READ WRITE' });
    assert.equal(setRw.status, 400);
    const count = await post('/databases/shop/read-query', { sql: 'SELECT count(*)::int AS n FROM orders' });
    assert.deepEqual(((await count.json()) as { rows: unknown[] }).rows, [{ n: 2 }]);
  });
});

describe('dashboard with a token (kylix server)', { skip }, () => {
  const TOKEN = 'kylix-test-dashboard-token-0123456789';
  let node: TestNode;
  let browser: Browser;
  before(async () => {
    node = await startNode({ token: TOKEN });
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    await node?.destroy();
  });

  it('asks for the token, keeps it for the tab, and the API still needs it', async () => {
    const api = node.platform.apiUrl;
    const history = `${api}/apis/kylix.dev/v1/namespaces/default/functions/x/metrics-history`;
    assert.equal((await fetch(history)).status, 401);
    assert.equal((await fetch(`${api}/apis/kylix.dev/v1/namespaces/default/functions`)).status, 401);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      // The page's first probe is refused (that is how it learns it needs a token).
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${api}/`);
    await page.fill('input[name="token"]', 'not-the-token');
    await page.click('button:has-text("Sign in")');
    await page.locator('.login .error').waitFor();
    await page.fill('input[name="token"]', TOKEN);
    await page.click('button:has-text("Sign in")');
    await page.locator('text=No functions in this namespace yet').waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('kylix-token')"), TOKEN);
    // A reload keeps the session; the token never went into a URL or a cookie.
    await page.reload();
    await page.locator('text=No functions in this namespace yet').waitFor();
    assert.deepEqual(await page.context().cookies(), []);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
