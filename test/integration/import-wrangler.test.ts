/**
 * `kylix import wrangler`: three realistic Workers projects (TOML and JSONC) become kylix.yaml,
 * with everything that has no counterpart listed; and an imported project runs on a real node with
 * no code change.
 */
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { importWranglerCommand } from '../../src/cli/commands/import-wrangler.js';
import { apply, startNode, type TestNode, writeProject } from '../helpers/platform.js';

type Doc = { kind: string; metadata: { name: string }; spec: Record<string, unknown> };

function importDir(files: Record<string, string>): { dir: string; docs: Doc[]; lines: string[] } {
  const dir = writeProject(files);
  const lines = importWranglerCommand(dir);
  const docs = parseAllDocuments(readFileSync(join(dir, 'kylix.yaml'), 'utf8')).map((d) => d.toJS() as Doc);
  return { dir, docs, lines };
}

const byKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind).map((d) => d.metadata.name);

const FULL_TOML = `
name = "Shop_API"
main = "src/index.ts"
compatibility_date = "2024-09-23"
compatibility_flags = ["nodejs_compat"]
account_id = "abc"
routes = [
  { pattern = "shop.example.com/api*", zone_name = "example.com" },
  "*.shop.example.com/*",
]

[vars]
API_BASE = "https://api.example.com"
PAGE_SIZE = 20
FEATURES = { beta = true }

[[kv_namespaces]]
binding = "SESSIONS"
id = "0f2ac74b498b48028cb68387c421e279"

[[d1_databases]]
binding = "DB"
database_name = "shop_db"
database_id = "xxxx"
migrations_dir = "db/migrations"

[[r2_buckets]]
binding = "INVOICES"
bucket_name = "shop-invoices"
jurisdiction = "eu"

[[queues.producers]]
binding = "ORDER_EVENTS"
queue = "order-events"

[[queues.consumers]]
queue = "order-events"
max_batch_size = 25
max_retries = 5
dead_letter_queue = "order-events-dlq"
max_batch_timeout = 5

[triggers]
crons = ["*/5 * * * *", "0 3 * * *"]

[limits]
cpu_ms = 50

[[durable_objects.bindings]]
name = "CART"
class_name = "Cart"

[env.production]
vars = { API_BASE = "https://prod.example.com" }
`;

const JSONC = `{
  // A Hono app with static assets, in wrangler.jsonc.
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "hono-blog",
  "main": "./src/worker.js",
  "compatibility_date": "2025-03-01",
  "compatibility_flags": ["nodejs_compat", "global_fetch_strictly_public"],
  "route": { "pattern": "blog.example.com", "custom_domain": true },
  "assets": { "directory": "./public" },
  "observability": { "enabled": true },
  /* bindings */
  "kv_namespaces": [{ "binding": "CACHE", "id": "1234" },],
  "services": [{ "binding": "AUTH", "service": "auth-worker" }],
  "vars": { "SITE_NAME": "My blog", },
}`;

const SERVICE_WORKER_TOML = `
name = "sw-counter"
main = "src/index.js"
compatibility_date = "2023-05-18"
workers_dev = true

[vars]
GREETING = "hello"

[[kv_namespaces]]
binding = "COUNTS"
id = "aaaa"
`;

const SERVICE_WORKER_CODE = `
import { Buffer } from 'node:buffer';
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
async function handle(request) {
  const n = Number((await COUNTS.get('n')) ?? '0') + 1;
  await COUNTS.put('n', String(n));
  return new Response(GREETING + ' ' + n + ' ' + Buffer.from(API_TOKEN).toString('hex'));
}
`;

/** A Workers Sites project: [site] bucket, read by Hono's serveStatic through __STATIC_CONTENT. */
const SITE_TOML = `
name = "hono-site"
main = "src/index.ts"
compatibility_date = "2023-01-01"

[site]
bucket = "./assets"
exclude = ["*.map"]
`;

const SITE_CODE = `
import { Hono } from 'hono';
import { serveStatic } from 'hono/cloudflare-workers';
import manifest from '__STATIC_CONTENT_MANIFEST';
const app = new Hono();
app.get('/static/*', serveStatic({ root: './', manifest }));
app.get('/', (c) => c.text('index from the worker'));
export default app;
`;

/** A Workers static-assets project with a single-page app and an API. */
const ASSETS_TOML = `
name = "spa"
main = "worker.js"
compatibility_date = "2025-01-01"

[assets]
directory = "./dist"
binding = "ASSETS"
not_found_handling = "single-page-application"
run_worker_first = ["/api/*"]
`;

describe('kylix import wrangler', () => {
  it('maps a full wrangler.toml: routes, vars, KV, D1, R2, queues, crons, limits; lists the rest', () => {
    const { docs, lines } = importDir({
      'wrangler.toml': FULL_TOML,
      'src/index.ts': 'export default { fetch() { return new Response("ok"); } };',
      'db/migrations/0001_init.sql': 'CREATE TABLE t (id int);',
    });
    const fn = docs.find((d) => d.kind === 'Function') as Doc;
    assert.equal(fn.metadata.name, 'shop-api');
    assert.equal(fn.spec.source, './src/index.ts');
    assert.deepEqual(fn.spec.routes, [
      { path: '/api', host: 'shop.example.com' },
      { path: '/api/*', host: 'shop.example.com' },
      { path: '/*', host: '*.shop.example.com' },
      { path: '/*' },
    ]);
    // As on Workers, env.PAGE_SIZE is the number 20 and env.FEATURES the object: typed, in spec.vars.
    assert.deepEqual(fn.spec.env, { API_BASE: 'https://api.example.com' });
    assert.deepEqual(fn.spec.vars, { PAGE_SIZE: 20, FEATURES: { beta: true } });
    assert.deepEqual(fn.spec.bindings, {
      SESSIONS: { keyValue: 'sessions' },
      DB: { database: 'shop-db' },
      INVOICES: { bucket: 'shop-invoices' },
      ORDER_EVENTS: { queue: 'order-events' },
    });
    assert.deepEqual(fn.spec.triggers, {
      queue: { name: 'order-events', batchSize: 25, maxRetries: 5, deadLetter: 'order-events-dlq' },
      schedule: { cron: '*/5 * * * *' },
    });
    assert.deepEqual(fn.spec.limits, { cpuMs: 50 });
    assert.deepEqual(fn.spec.compatibilityFlags, ['nodejs_compat']);
    // A Worker may fetch() any public address.
    assert.deepEqual(fn.spec.egress, { allow: ['*'] });
    assert.deepEqual(byKind(docs, 'KeyValue'), ['sessions']);
    assert.deepEqual(byKind(docs, 'Queue'), ['order-events', 'order-events-dlq']);
    assert.deepEqual(byKind(docs, 'Bucket'), ['shop-invoices']);
    assert.deepEqual(docs.find((d) => d.kind === 'Database')?.spec, { migrations: './db/migrations' });
    const text = lines.join('\n');
    assert.match(text, /nodejs_compat is honoured/);
    assert.doesNotMatch(text, /vars\.PAGE_SIZE/);
    for (const expected of [
      /shop\.example\.com\/api\*.*whole last segment/,
      /d1_databases\.DB: a Kylix Database speaks PostgreSQL/,
      /max_batch_timeout: not configurable/,
      /triggers\.crons\[1\] "0 3 \* \* \*": a Kylix function has one schedule/,
      /durable_objects: Durable Objects are not offered/,
      /r2_buckets\.INVOICES\.jurisdiction \(eu\)/,
      /env: environments: only the top-level settings were imported/,
    ])
      assert.match(text, expected);
  });

  it('reads wrangler.jsonc with comments and trailing commas; assets are mapped; custom domains and services are listed', () => {
    const { docs, lines } = importDir({ 'wrangler.jsonc': JSONC, 'src/worker.js': 'export default {};' });
    const fn = docs.find((d) => d.kind === 'Function') as Doc;
    assert.equal(fn.metadata.name, 'hono-blog');
    assert.equal(fn.spec.source, './src/worker.js');
    assert.deepEqual(fn.spec.routes, [{ path: '/*', host: 'blog.example.com' }, { path: '/*' }]);
    assert.deepEqual(fn.spec.env, { SITE_NAME: 'My blog' });
    assert.deepEqual(fn.spec.bindings, { CACHE: { keyValue: 'cache' } });
    // No limits.cpu_ms: Workers' default on its paid plans, not Kylix's 1 s.
    assert.deepEqual(fn.spec.limits, { cpuMs: 30_000 });
    assert.match(lines.join('\n'), /limits\.cpuMs: 30000 \(Workers' default/);
    const text = lines.join('\n');
    assert.deepEqual(fn.spec.assets, { directory: './public' });
    assert.doesNotMatch(text, /assets:/);
    assert.match(text, /services: service bindings/);
    assert.match(text, /compatibility_flags: global_fetch_strictly_public has no effect/);
    assert.doesNotMatch(text, /observability|\$schema/);
  });

  it('maps [assets] (binding, not_found_handling) and notes run_worker_first patterns', () => {
    const { docs, lines } = importDir({ 'wrangler.toml': ASSETS_TOML, 'worker.js': 'export default {};' });
    const fn = docs.find((d) => d.kind === 'Function') as Doc;
    assert.deepEqual(fn.spec.assets, {
      directory: './dist',
      binding: 'ASSETS',
      notFoundHandling: 'single-page-application',
      runWorkerFirst: true,
    });
    assert.match(lines.join('\n'), /assets\.run_worker_first: the patterns \["\/api\/\*"\] became "always"/);
  });

  describe('an imported Workers Sites project (Hono serveStatic) runs unchanged', () => {
    let node: TestNode;
    let dir: string;
    let lines: string[];
    before(async () => {
      node = await startNode();
      ({ dir, lines } = importDir({
        'wrangler.toml': SITE_TOML,
        'src/index.ts': SITE_CODE,
        'assets/static/style.css': 'h1 { color: teal }',
      }));
      symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(dir, 'node_modules'));
      assert.ok((await apply(node, dir)).ok);
    });
    after(() => node.destroy());

    it('serves the site folder through the worker, and lists what it could not map', async () => {
      assert.match(lines.join('\n'), /site\.exclude: not applied/);
      const css = await fetch(node.url('/static/style.css'));
      assert.equal(css.status, 200);
      assert.equal(await css.text(), 'h1 { color: teal }');
      assert.equal(await (await fetch(node.url('/'))).text(), 'index from the worker');
    });
  });

  describe('an imported Service Worker project runs unchanged', () => {
    let node: TestNode;
    let dir: string;
    before(async () => {
      node = await startNode();
      ({ dir } = importDir({
        'wrangler.toml': SERVICE_WORKER_TOML,
        '.dev.vars': '# local only\nAPI_TOKEN="tok"\n',
        'src/index.js': SERVICE_WORKER_CODE,
      }));
      await apply(node, dir);
    });
    after(() => node.destroy());

    it('answers with its vars, its KV namespace and its .dev.vars secret', async () => {
      const first = await fetch(node.url('/anything'));
      assert.equal(first.status, 200, JSON.stringify(node.platform.logs.tail('default', 'sw-counter', 5)));
      assert.equal(await first.text(), `hello 1 ${Buffer.from('tok').toString('hex')}`);
      assert.equal(
        await (await fetch(node.url('/again'))).text(),
        `hello 2 ${Buffer.from('tok').toString('hex')}`,
      );
    });

    it('refuses to overwrite the kylix.yaml it wrote', () => {
      assert.throws(() => importWranglerCommand(dir), /already exists\. Pass --force/);
    });
  });
});
