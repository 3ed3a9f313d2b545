/**
 * Workers code runs unchanged, through the real platform: Service Worker syntax (fetch and scheduled
 * listeners, env as globals, `self`), navigator.userAgent, scheduler.wait, request.cf, and the Web
 * classes named and matched by instanceof as on Workers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { invokeEvent } from '../../src/runtime/deliver-event.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const SERVICE_WORKER = `
let ticks = [];
async function handle(request) {
  const path = new URL(request.url).pathname;
  if (path === '/sw/ticks') return Response.json(ticks);
  const started = Date.now();
  await scheduler.wait(20);
  return Response.json({
    self: self === globalThis,
    userAgent: navigator.userAgent,
    cores: navigator.hardwareConcurrency,
    waited: Date.now() - started >= 15,
    cf: typeof request.cf === 'object' && request.cf !== null && Object.keys(request.cf).length === 0,
    greeting: GREETING,
    method: request.method,
  });
}
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
self.addEventListener('scheduled', (event) => {
  event.waitUntil(scheduler.wait(5).then(() => ticks.push(event.cron + '@' + event.scheduledTime)));
});
`;

const CLASSES = `
class Mine extends Response {}
export default {
  async fetch(request) {
    const native = Response.redirect('https://example.com/', 302);
    const out = {
      responseName: Response.name,
      requestName: Request.name,
      lightRequest: request instanceof Request,
      clonedRequest: request.clone() instanceof Request,
      newRequest: new Request('https://example.com/') instanceof Request,
      lightResponse: new Response('x') instanceof Response,
      streamResponse: new Response(new ReadableStream()) instanceof Response,
      redirect: native instanceof Response,
      error: Response.error() instanceof Response,
      json: Response.json({}) instanceof Response,
      subclass: new Mine('x') instanceof Response,
      notSubclass: new Response('x') instanceof Mine,
      cloneResponse: new Response('x').clone() instanceof Response,
      plainObject: ({}) instanceof Response,
      ctorName: request.constructor.name,
    };
    return new Mine(JSON.stringify(out), { headers: { 'content-type': 'application/json' } });
  },
};
`;

const EGRESS = `
export default {
  async fetch() {
    try {
      await fetch('https://api.stripe.com/v1/charges');
      return new Response('reached');
    } catch (err) {
      return Response.json({ message: err.message, cause: String(err.cause?.message) });
    }
  },
};
`;

/** A Hono app reading its env through hono/adapter, which picks the runtime by navigator.userAgent. */
const HONO_APP = `
import { Hono } from 'hono';
import { env, getRuntimeKey } from 'hono/adapter';
const app = new Hono();
app.get('/hono', (c) => c.json({ runtime: getRuntimeKey(), greeting: env(c).GREETING }));
export default app;
`;

// itty-router's shape: `export default router`, a Proxy that answers every property with a
// route-adding function, `then` included; Workers never awaits the default export.
const THENABLE_ROUTER = `
const routes = [];
const router = new Proxy({}, {
  get: (_t, prop) => prop === 'fetch'
    ? (request) => { const path = new URL(request.url).pathname; const r = routes.find((x) => path.endsWith(x.path)); return r ? r.handler() : new Response('none', { status: 404 }); }
    : (path, handler) => { routes.push({ method: prop, path, handler }); return router; },
});
router.get('/hi', () => new Response('hi from a thenable router'));
export default router;
`;

// Workers KV's bulk forms: get(keys[]) and getWithMetadata(keys[]) answer Maps.
const KV_API = `
export default {
  async fetch(request, env) {
    await env.KV.put('a', '{"n":1}', { metadata: { m: 'a' } });
    await env.KV.put('b', 'two');
    const texts = await env.KV.get(['a', 'b', 'missing']);
    const json = await env.KV.get(['a'], { type: 'json' });
    const meta = await env.KV.getWithMetadata(['a', 'b']);
    let refused = '';
    try { await env.KV.get(['a'], 'arrayBuffer'); } catch (e) { refused = e.message; }
    return Response.json({
      isMap: texts instanceof Map,
      texts: Object.fromEntries(texts),
      json: Object.fromEntries(json),
      meta: Object.fromEntries(meta),
      refused,
    });
  },
};
`;

// Workers takes a zero-length body with a null-body status as no body (worktop's reply(204) makes
// new Response('', { status: 204 })); a stream body, or one with bytes, is still refused.
const NULL_BODY = `
export default {
  async fetch(request) {
    const kind = new URL(request.url).searchParams.get('kind');
    const status = Number(new URL(request.url).searchParams.get('status') ?? 204);
    const bodies = {
      string: '',
      bytes: new Uint8Array(0),
      buffer: new ArrayBuffer(0),
      blob: new Blob([]),
      params: new URLSearchParams(),
    };
    if (kind in bodies) {
      const r = new Response(bodies[kind], { status, headers: { 'x-kind': kind } });
      return new Response(null, { status: r.status, headers: { 'x-kind': kind, 'x-body-null': String(r.body === null) } });
    }
    if (kind === 'returned') return new Response('', { status });
    const refused = [];
    for (const body of ['x', new ReadableStream()]) {
      try { new Response(body, { status: 204 }); refused.push(false); } catch (e) { refused.push(e instanceof TypeError); }
    }
    return Response.json({ refused });
  },
};
`;

// Cloudflare's D1 template keeps its router on env between requests (env.__router = router).
const ENV_CACHE = `
export default {
  async fetch(request, env) {
    env.__hits = (env.__hits ?? 0) + 1;
    return Response.json({ hits: env.__hits, greeting: env.GREETING, kv: typeof env.KV?.get });
  },
};
`;

// Workers' additions to Web Crypto: timingSafeEqual, MD5 digests and DigestStream.
const CRYPTO_EXTRAS = `
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
export default {
  async fetch() {
    const enc = new TextEncoder();
    const md5 = hex(await crypto.subtle.digest('MD5', enc.encode('abc')));
    const md5Lower = hex(await crypto.subtle.digest({ name: 'md5' }, enc.encode('abc').buffer));
    const sha1 = hex(await crypto.subtle.digest('SHA-1', enc.encode('abc')));
    const same = crypto.subtle.timingSafeEqual(enc.encode('secret'), enc.encode('secret'));
    const differ = crypto.subtle.timingSafeEqual(enc.encode('secret'), enc.encode('secreT'));
    let lengths = '';
    try { crypto.subtle.timingSafeEqual(enc.encode('a'), enc.encode('ab')); } catch (e) { lengths = e.name; }
    const stream = new crypto.DigestStream('SHA-256');
    await new Response('abc').body.pipeTo(stream);
    return Response.json({ md5, md5Lower, sha1, same, differ, lengths, streamed: hex(await stream.digest) });
  },
};
`;

describe('Workers compatibility: syntax and globals', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    // Bundled here, where hono resolves; apply bundles the result again as a user's file.
    const hono = await build({
      stdin: { contents: HONO_APP, resolveDir: process.cwd(), loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      write: false,
    });
    await apply(
      node,
      writeProject({
        'kylix.yaml': [
          functionManifest('sw', './sw.js', ['/sw/*'], '  env:\n    GREETING: hello'),
          '---',
          functionManifest('classes', './classes.js', ['/classes']),
          '---',
          functionManifest('egress', './egress.js', ['/egress']),
          '---',
          functionManifest('hono', './hono.js', ['/hono'], '  env:\n    GREETING: from-env'),
          '---',
          functionManifest('thenable', './thenable.js', ['/thenable/*']),
          '---',
          functionManifest('nullbody', './nullbody.js', ['/nullbody']),
          '---',
          functionManifest('cryptox', './cryptox.js', ['/cryptox']),
          '---',
          functionManifest(
            'envcache',
            './envcache.js',
            ['/envcache'],
            '  env:\n    GREETING: hi\n  bindings:\n    KV: { keyValue: kv-api }\n  scaling:\n    maxInstances: 1',
          ),
          '---',
          'apiVersion: kylix.dev/v1\nkind: KeyValue\nmetadata: { name: kv-api }\nspec: {}',
          '---',
          functionManifest('kvapi', './kvapi.js', ['/kvapi'], '  bindings:\n    KV: { keyValue: kv-api }'),
        ].join('\n'),
        'kvapi.js': KV_API,
        'thenable.js': THENABLE_ROUTER,
        'nullbody.js': NULL_BODY,
        'cryptox.js': CRYPTO_EXTRAS,
        'envcache.js': ENV_CACHE,
        'hono.js': hono.outputFiles[0]?.text ?? '',
        'egress.js': EGRESS,
        'sw.js': SERVICE_WORKER,
        'classes.js': CLASSES,
      }),
    );
  });
  after(() => node.destroy());

  it('serves a default export that is a thenable (itty-router), without awaiting it', async () => {
    const res = await fetch(node.url('/thenable/hi'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'thenable', 5)));
    assert.equal(await res.text(), 'hi from a thenable router');
  });

  it('takes an empty body with a null-body status (204, 205, 304) as no body, as Workers does', async () => {
    for (const kind of ['string', 'bytes', 'buffer', 'blob', 'params']) {
      const res = await fetch(node.url(`/nullbody?kind=${kind}`));
      assert.equal(
        res.status,
        204,
        `${kind}: ${JSON.stringify(node.platform.logs.tail('default', 'nullbody', 5))}`,
      );
      assert.equal(res.headers.get('x-body-null'), 'true', kind);
    }
    for (const status of [204, 205, 304]) {
      const res = await fetch(node.url(`/nullbody?kind=returned&status=${status}`));
      assert.equal(res.status, status);
      assert.equal(await res.text(), '');
    }
    const refused = await (await fetch(node.url('/nullbody?kind=refused'))).json();
    assert.deepEqual(refused, { refused: [true, true] });
  });

  it('lets code keep its own things on env between requests, as on Workers', async () => {
    const first = await fetch(node.url('/envcache'));
    assert.equal(first.status, 200, JSON.stringify(node.platform.logs.tail('default', 'envcache', 5)));
    assert.deepEqual(await first.json(), { hits: 1, greeting: 'hi', kv: 'function' });
    assert.deepEqual(await (await fetch(node.url('/envcache'))).json(), {
      hits: 2,
      greeting: 'hi',
      kv: 'function',
    });
  });

  it("offers Workers' Web Crypto additions: timingSafeEqual, MD5 digests, DigestStream", async () => {
    const res = await fetch(node.url('/cryptox'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'cryptox', 5)));
    assert.deepEqual(await res.json(), {
      md5: '900150983cd24fb0d6963f7d28e17f72',
      md5Lower: '900150983cd24fb0d6963f7d28e17f72',
      sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d',
      same: true,
      differ: false,
      lengths: 'TypeError',
      streamed: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    });
  });

  it('answers a KV get of several keys with a Map, as Workers KV does', async () => {
    const res = await fetch(node.url('/kvapi'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'kvapi', 5)));
    assert.deepEqual(await res.json(), {
      isMap: true,
      texts: { a: '{"n":1}', b: 'two', missing: null },
      json: { a: { n: 1 } },
      meta: { a: { value: '{"n":1}', metadata: { m: 'a' } }, b: { value: 'two', metadata: null } },
      refused: 'A get of several keys returns text or json, not "arrayBuffer": get them one by one.',
    });
  });

  it('serves a Service Worker module: respondWith, self, env as globals, navigator, scheduler, cf', async () => {
    const res = await fetch(node.url('/sw/x'), { method: 'POST', body: 'b' });
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'sw', 5)));
    assert.deepEqual(await res.json(), {
      self: true,
      userAgent: 'Cloudflare-Workers',
      cores: 1,
      waited: true,
      cf: true,
      greeting: 'hello',
      method: 'POST',
    });
  });

  it("runs a Service Worker module's scheduled listener and waits for its waitUntil work", async () => {
    const fn = await node.client.get('functions', 'sw');
    await invokeEvent(
      node.platform.runtime,
      `default/sw/${fn.status?.latestReadyRevision}`,
      'scheduled',
      { cron: '*/5 * * * *', scheduledTime: 1_700_000_000_000 },
      10_000,
    );
    assert.deepEqual(await (await fetch(node.url('/sw/ticks'))).json(), ['*/5 * * * *@1700000000000']);
  });

  it('names Request and Response as Workers does, and every request and response is instanceof them', async () => {
    const res = await fetch(node.url('/classes'));
    assert.deepEqual(await res.json(), {
      responseName: 'Response',
      requestName: 'Request',
      lightRequest: true,
      clonedRequest: true,
      newRequest: true,
      lightResponse: true,
      streamResponse: true,
      redirect: true,
      error: true,
      json: true,
      subclass: true,
      notSubclass: false,
      cloneResponse: true,
      plainObject: false,
      ctorName: 'Request',
    });
  });

  it("Hono's runtime detection says workerd, so hono/adapter's env() reads the function's env", async () => {
    const res = await fetch(node.url('/hono'));
    assert.deepEqual(await res.json(), { runtime: 'workerd', greeting: 'from-env' });
  });

  it('a refused fetch() says which spec.egress entry would allow it, in the error and in the log', async () => {
    const body = (await (await fetch(node.url('/egress'))).json()) as { message: string; cause: string };
    assert.equal(body.message, 'fetch failed');
    assert.match(
      body.cause,
      /api\.stripe\.com is not in spec\.egress\.allow of this function \(allowed: none\)/,
    );
    assert.match(
      body.cause,
      /To allow it, add "api\.stripe\.com" to the Function's spec\.egress\.allow \(egress: \{ allow: \["api\.stripe\.com"\] \}\), or "\*\.stripe\.com" for every host under stripe\.com/,
    );
    // The log line travels apart from the response: wait for it.
    await eventually(() =>
      node.platform.logs
        .tail('default', 'egress', 10)
        .some((e) => /refused by the egress proxy: .*To allow it, add "api\.stripe\.com"/.test(e.message)),
    );
  });
});
