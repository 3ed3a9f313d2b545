/**
 * Static assets (spec.assets) through a real node: uploaded content-addressed at apply, served by
 * the gateway before the function runs (ETag, 304, Content-Type, html handling, SPA fallback),
 * env.ASSETS.fetch() and Hono's serveStatic (Workers Sites) inside the function, reproducible
 * revisions, and the limits.
 */
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KylixError } from '../../src/errors.js';
import { apply, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const MANIFEST = (assets: string, extra = '') => `apiVersion: kylix.dev/v1
kind: Function
metadata:
  name: site
spec:
  source: ./worker.ts
  routes:
    - path: /*
  assets:
${assets}
${extra}`;

const WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/api/hello') return new Response('from the worker');
    if (url.pathname.startsWith('/via-binding/')) {
      const res = await env.ASSETS.fetch(new URL(url.pathname.slice('/via-binding'.length), request.url));
      return new Response(await res.text(), { status: res.status, headers: { 'x-asset-type': res.headers.get('content-type') ?? '' } });
    }
    return new Response('worker fallback ' + url.pathname, { status: 404 });
  },
};`;

/** A GET with exactly these headers (fetch() adds its own sec-fetch-mode). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('static assets', () => {
  let node: TestNode;
  let app: string;
  before(async () => {
    node = await startNode();
    app = writeProject({
      'kylix.yaml': MANIFEST('    directory: ./public\n    binding: ASSETS\n    notFoundHandling: 404-page'),
      'worker.ts': WORKER,
      'public/index.html': '<h1>home</h1>',
      'public/about.html': '<h1>about</h1>',
      'public/docs/index.html': '<h1>docs</h1>',
      'public/css/site.css': 'body { color: red }',
      'public/img/logo.svg': '<svg/>',
      'public/404.html': '<h1>not here</h1>',
      'public/secret.txt': 'ignored',
      'public/.assetsignore': 'secret.txt\n',
    });
    const { ok } = await apply(node, app);
    assert.ok(ok);
  });
  after(async () => {
    await node.destroy();
  });

  it('serves files with Content-Type, ETag and Cache-Control, before the worker', async () => {
    const css = await fetch(node.url('/css/site.css'));
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(await css.text(), 'body { color: red }');
    assert.match(css.headers.get('etag') ?? '', /^"[a-f0-9]{32}"$/);
    assert.equal(css.headers.get('cache-control'), 'public, max-age=0, must-revalidate');
    const svg = await fetch(node.url('/img/logo.svg'));
    assert.equal(svg.headers.get('content-type'), 'image/svg+xml; charset=utf-8');
    await svg.arrayBuffer();
    // The worker still answers what no asset does.
    assert.equal(await (await fetch(node.url('/api/hello'))).text(), 'from the worker');
    // .assetsignore keeps a file out.
    assert.equal((await fetch(node.url('/secret.txt'))).status, 404);
  });

  it('answers If-None-Match with 304 and HEAD without a body', async () => {
    const first = await fetch(node.url('/css/site.css'));
    const etag = first.headers.get('etag') ?? '';
    await first.text();
    const again = await fetch(node.url('/css/site.css'), { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    const head = await fetch(node.url('/css/site.css'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String('body { color: red }'.length));
    assert.equal(await head.text(), '');
  });

  it('matches .html and index.html as Workers do (auto-trailing-slash)', async () => {
    assert.equal(await (await fetch(node.url('/'))).text(), '<h1>home</h1>');
    assert.equal(await (await fetch(node.url('/about'))).text(), '<h1>about</h1>');
    assert.equal(await (await fetch(node.url('/docs/'))).text(), '<h1>docs</h1>');
    const toBare = await fetch(node.url('/about.html?x=1'), { redirect: 'manual' });
    assert.equal(toBare.status, 307);
    assert.equal(toBare.headers.get('location'), '/about?x=1');
    const toSlash = await fetch(node.url('/docs'), { redirect: 'manual' });
    assert.equal(toSlash.status, 307);
    assert.equal(toSlash.headers.get('location'), '/docs/');
  });

  it('env.ASSETS.fetch() answers from the files, with the 404 page for a miss', async () => {
    const hit = await fetch(node.url('/via-binding/css/site.css'));
    assert.equal(hit.status, 200);
    assert.equal(hit.headers.get('x-asset-type'), 'text/css; charset=utf-8');
    assert.equal(await hit.text(), 'body { color: red }');
    const miss = await fetch(node.url('/via-binding/nope/where'));
    assert.equal(miss.status, 404);
    assert.equal(await miss.text(), '<h1>not here</h1>');
  });

  it('the same files from another folder make no new revision; a changed file makes one', async () => {
    const copy = writeProject({
      'kylix.yaml': MANIFEST('    directory: ./public\n    binding: ASSETS\n    notFoundHandling: 404-page'),
      'worker.ts': WORKER,
      'public/index.html': '<h1>home</h1>',
      'public/about.html': '<h1>about</h1>',
      'public/docs/index.html': '<h1>docs</h1>',
      'public/css/site.css': 'body { color: red }',
      'public/img/logo.svg': '<svg/>',
      'public/404.html': '<h1>not here</h1>',
      'public/secret.txt': 'something else, ignored',
      'public/.assetsignore': 'secret.txt\n',
    });
    const same = await apply(node, copy);
    assert.equal(same.applied[0]?.result, 'unchanged');
    writeFileSync(join(copy, 'public/css/site.css'), 'body { color: blue }');
    const changed = await apply(node, copy);
    assert.equal(changed.applied[0]?.result, 'configured');
    assert.equal(
      (await node.client.list('revisions')).filter((r) => r.metadata.name.startsWith('site-')).length,
      2,
    );
    assert.equal(await (await fetch(node.url('/css/site.css'))).text(), 'body { color: blue }');
  });

  it('single-page-application: navigations get index.html, other misses reach the worker', async () => {
    const spa = writeProject({
      'kylix.yaml': MANIFEST('    directory: ./dist\n    notFoundHandling: single-page-application')
        .replace('name: site', 'name: spa')
        .replace('path: /*', 'path: /app/*'),
      'worker.ts': WORKER,
      'dist/app/index.html': '<div id=root></div>',
      'dist/index.html': '<h1>spa</h1>',
    });
    assert.ok((await apply(node, spa)).ok);
    // fetch() always sends sec-fetch-mode: cors; a browser's navigation sends "navigate".
    const nav = await get(node.url('/app/users/42'), { 'sec-fetch-mode': 'navigate' });
    assert.equal(nav.body, '<h1>spa</h1>');
    const api = await get(node.url('/app/users/42'), { 'sec-fetch-mode': 'cors' });
    assert.equal(api.status, 404);
    assert.equal(api.body, 'worker fallback /app/users/42');
  });

  it("Hono's serveStatic (hono/cloudflare-workers) reads the files through __STATIC_CONTENT", async () => {
    const hono = writeProject({
      'kylix.yaml': `apiVersion: kylix.dev/v1
kind: Function
metadata:
  name: hono-site
spec:
  source: ./app.ts
  routes:
    - path: /h/*
  assets:
    directory: ./static
    runWorkerFirst: true
`,
      'app.ts': `import { Hono } from 'hono';
import { serveStatic } from 'hono/cloudflare-workers';
import manifest from '__STATIC_CONTENT_MANIFEST';
const app = new Hono();
app.get('/h/static/*', serveStatic({ root: './', manifest, rewriteRequestPath: (p) => p.replace(/^\\/h/, '') }));
app.get('/h/hello', (c) => c.text('hono'));
export default app;`,
      'static/static/app.js': 'console.log(1)',
    });
    symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(hono, 'node_modules'));
    assert.ok((await apply(node, hono)).ok);
    const js = await fetch(node.url('/h/static/app.js'));
    assert.equal(js.status, 200);
    assert.equal(await js.text(), 'console.log(1)');
    assert.equal(await (await fetch(node.url('/h/hello'))).text(), 'hono');
  });

  it('refuses a missing folder at apply, naming it', async () => {
    const bad = writeProject({
      'kylix.yaml': MANIFEST('    directory: ./nope').replace('name: site', 'name: bad'),
      'worker.ts': WORKER,
    });
    await assert.rejects(apply(node, bad), (err: KylixError) => {
      assert.equal(err.code, 'ERR_BUILD_FAILED');
      assert.match(JSON.stringify(err.causes), /spec\.assets\.directory \.\/nope is not a folder/);
      return true;
    });
  });
});
