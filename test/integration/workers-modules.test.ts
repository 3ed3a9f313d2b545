/**
 * The node:* modules Workers offers under nodejs_compat, and cloudflare:workers, through the real
 * platform: bundled in as pure-JS modules at apply, so nothing of the host's Node is imported at run
 * time; any other node: module is refused at build with the list of those offered.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { bundleFunction } from '../../src/build/bundle.js';
import type { KylixError } from '../../src/errors.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const NODE_APP = `
import { AsyncLocalStorage } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import { EventEmitter, once } from 'node:events';
import util, { format, promisify } from 'node:util';
import crypto, { createHash, createHmac, randomBytes, timingSafeEqual, pbkdf2Sync, randomUUID } from 'node:crypto';
import { Readable, Transform, PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { fileURLToPath, parse } from 'node:url';
import assert from 'node:assert';
import { strictEqual } from 'node:assert/strict';
import { StringDecoder } from 'node:string_decoder';
import events from 'events';
import nodeProcess from 'node:process';
import { env, waitUntil } from 'cloudflare:workers';

const als = new AsyncLocalStorage();
const loadedEnv = env.GREETING;

async function later() { await new Promise((r) => setTimeout(r, 2)); await null; return als.getStore(); }

export default {
  async fetch(request) {
    const out = {};
    out.als = await als.run({ id: 'req-1' }, () => later()).then((s) => s?.id);
    out.alsOutside = als.getStore() ?? null;
    out.buffer = Buffer.from('hello').toString('base64') + '|' + Buffer.concat([Buffer.from('a'), Buffer.from('b')]).toString();
    const e = new EventEmitter();
    setTimeout(() => e.emit('go', 42), 1);
    out.events = (await once(e, 'go'))[0] + (events.EventEmitter === EventEmitter ? 0 : 1000);
    out.util = format('%s=%d', 'x', 5) + '|' + util.inspect({ a: [1] }) + '|' + typeof promisify(setTimeout);
    out.sha256 = createHash('sha256').update('abc').digest('hex');
    out.md5 = createHash('md5').update('abc').digest('base64');
    out.hmac = createHmac('sha256', 'key').update('data').digest('hex');
    out.pbkdf2 = pbkdf2Sync('pw', 'salt', 10, 16, 'sha256').toString('hex');
    out.random = randomBytes(8).length + '|' + timingSafeEqual(Buffer.from('ab'), Buffer.from('ab')) + '|' + randomUUID().length;
    out.subtle = typeof crypto.subtle.digest;
    const upper = new Transform({ transform(chunk, _enc, cb) { cb(null, chunk.toString().toUpperCase()); } });
    const sink = new PassThrough(); const parts = []; sink.on('data', (c) => parts.push(c.toString()));
    await pipeline(Readable.from(['ab', 'cd']), upper, sink);
    out.stream = parts.join('');
    out.path = path.join('/a/b', '../c', 'd.txt') + '|' + path.extname('x.tar.gz') + '|' + path.resolve('/x', 'y');
    out.url = fileURLToPath('file:///tmp/a%20b') + '|' + parse('http://u@h:8/p?q=1').query;
    assert.ok(true); strictEqual(1, 1);
    try { assert.deepStrictEqual({ a: 1 }, { a: 2 }); } catch (err) { out.assert = err.code; }
    const d = new StringDecoder('utf8'); const euro = Buffer.from('€');
    out.decoder = d.write(euro.subarray(0, 1)) + d.write(euro.subarray(1)) + d.end();
    out.env = [loadedEnv, env.GREETING, env === globalThis.__kylix_workers__?.env, typeof process, nodeProcess.env.GREETING].join('|');
    waitUntil(Promise.resolve());
    return Response.json(out);
  },
};
`;

const MORE_NODE_APP = `
import zlib, { gzipSync, gunzipSync, inflateSync, deflateSync, createGzip } from 'node:zlib';
import { setTimeout as sleep, setImmediate as tick, scheduler } from 'node:timers/promises';
import timers from 'node:timers';
import querystring from 'node:querystring';
import dc from 'node:diagnostics_channel';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Buffer } from 'node:buffer';
import { promisify } from 'node:util';

export default {
  async fetch() {
    const out = {};
    const text = 'hello hello hello hello';
    out.gzip = gunzipSync(gzipSync(text)).toString() + '|' + inflateSync(deflateSync(Buffer.from(text))).toString();
    out.gzipAsync = (await promisify(zlib.gunzip)(await promisify(zlib.gzip)('async'))).toString();
    const gz = createGzip(); const parts = [];
    gz.on('data', (c) => parts.push(c));
    await new Promise((r) => { gz.on('end', r); gz.end('streamed'); });
    out.gzipStream = gunzipSync(Buffer.concat(parts)).toString();
    // Native gzip output reads back through the polyfill.
    const native = await new Response(new Blob(['native']).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
    out.fromNative = gunzipSync(Buffer.from(native)).toString();
    out.sleep = await sleep(2, 'slept');
    out.tick = await tick('ticked');
    await scheduler.wait(1);
    const ac = new AbortController(); const pending = sleep(10_000, null, { signal: ac.signal }); ac.abort();
    out.aborted = await pending.catch((e) => e.name);
    out.timers = await new Promise((r) => timers.setImmediate(r, 'immediate'));
    out.qs = querystring.stringify({ a: [1, 2], b: 'x y' }) + '|' + JSON.stringify(querystring.parse('a=1&a=2&c=%20'));
    const seen = [];
    const ch = dc.channel('app:work');
    const onMessage = (m, name) => seen.push(name + ':' + m.n);
    out.before = ch.hasSubscribers;
    dc.subscribe('app:work', onMessage);
    ch.publish({ n: 1 });
    dc.unsubscribe('app:work', onMessage);
    ch.publish({ n: 2 });
    const tc = dc.tracingChannel('app:op');
    tc.subscribe({ start: (c) => seen.push('start:' + c.id), asyncEnd: (c) => seen.push('asyncEnd:' + c.result) });
    await tc.tracePromise(async () => 'done', { id: 7 });
    const als = new AsyncLocalStorage();
    const bound = dc.channel('app:store');
    bound.bindStore(als, (m) => m.user);
    out.store = bound.runStores({ user: 'ada' }, () => als.getStore());
    out.seen = seen.join(',');
    return Response.json(out);
  },
};
`;

// The same code as a Workers project with nodejs_compat would have it: a global process.
const PROCESS_APP = `
import { Buffer } from 'node:buffer';
export default {
  async fetch() {
    return Response.json({
      typeof: typeof process,
      same: globalThis.process === process,
      env: process.env.GREETING,
      nodeEnv: process.env.NODE_ENV ?? null,
      tick: await new Promise((r) => process.nextTick(r, 'next')),
      versions: typeof process.versions,
      buffer: Buffer.from('x').length,
    });
  },
};
`;

const ENTRYPOINT_APP = `
import { WorkerEntrypoint, env } from 'cloudflare:workers';
export default class extends WorkerEntrypoint {
  async fetch(request) {
    return Response.json({ mine: this.env.GREETING, same: this.env === env, ctx: typeof this.ctx.waitUntil, url: new URL(request.url).pathname });
  }
}
`;

describe('Workers compatibility: node:* modules and cloudflare:workers', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    const env = '  env:\n    GREETING: hello';
    await apply(
      node,
      writeProject({
        'kylix.yaml': [
          functionManifest('nodeapp', './node-app.js', ['/node'], env),
          '---',
          functionManifest('entry', './entry.js', ['/entry'], env),
          '---',
          functionManifest('morenode', './more-node.js', ['/more-node']),
          '---',
          functionManifest(
            'withprocess',
            './process-app.js',
            ['/with-process'],
            `${env}\n  compatibilityFlags: [nodejs_compat]`,
          ),
          '---',
          functionManifest('noprocess', './process-app.js', ['/no-process']),
        ].join('\n'),
        'process-app.js': PROCESS_APP,
        'node-app.js': NODE_APP,
        'more-node.js': MORE_NODE_APP,
        'entry.js': ENTRYPOINT_APP,
      }),
    );
  });
  after(() => node.destroy());

  it('offers async_hooks, buffer, events, util, crypto, stream, path, url, assert and string_decoder', async () => {
    const res = await fetch(node.url('/node'));
    const fn = await node.client.get('functions', 'nodeapp');
    const logs = node.platform.logs.tail('default', 'nodeapp', 5);
    assert.equal(res.status, 200, JSON.stringify([fn.status?.conditions, logs]));
    assert.deepEqual(await res.json(), {
      als: 'req-1',
      alsOutside: null,
      buffer: 'aGVsbG8=|ab',
      events: 42,
      util: 'x=5|{ a: [ 1 ] }|function',
      sha256: createHash('sha256').update('abc').digest('hex'),
      md5: createHash('md5').update('abc').digest('base64'),
      hmac: createHmac('sha256', 'key').update('data').digest('hex'),
      pbkdf2: pbkdf2Sync('pw', 'salt', 10, 16, 'sha256').toString('hex'),
      random: '8|true|36',
      subtle: 'function',
      stream: 'ABCD',
      path: '/a/c/d.txt|.gz|/x/y',
      url: '/tmp/a b|q=1',
      assert: 'ERR_ASSERTION',
      decoder: '€',
      // env is the function's env while it loads and after; the state's global is gone once loaded;
      // `process` is not a global (as on Workers without nodejs_compat), node:process has the vars.
      env: 'hello|hello|false|undefined|hello',
    });
  });

  it('offers zlib, timers, timers/promises, querystring and diagnostics_channel', async () => {
    const res = await fetch(node.url('/more-node'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'morenode', 5)));
    assert.deepEqual(await res.json(), {
      gzip: 'hello hello hello hello|hello hello hello hello',
      gzipAsync: 'async',
      gzipStream: 'streamed',
      fromNative: 'native',
      sleep: 'slept',
      tick: 'ticked',
      aborted: 'AbortError',
      timers: 'immediate',
      qs: 'a=1&a=2&b=x%20y|{"a":["1","2"],"c":" "}',
      before: false,
      store: 'ada',
      seen: 'app:work:1,start:7,asyncEnd:done',
    });
  });

  it('gives a global process only to a function with compatibilityFlags: [nodejs_compat]', async () => {
    const res = await fetch(node.url('/with-process'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'withprocess', 5)));
    assert.deepEqual(await res.json(), {
      typeof: 'object',
      same: true,
      env: 'hello',
      // esbuild's own define for browser bundles, as wrangler's.
      nodeEnv: 'development',
      tick: 'next',
      versions: 'object',
      buffer: 1,
    });
    const without = await fetch(node.url('/no-process'));
    // Without the flag the same code throws, as on Workers without nodejs_compat.
    assert.equal(without.status, 502);
    assert.match(await without.text(), /ERR_FUNCTION_THREW/);
    await eventually(() =>
      node.platform.logs
        .tail('default', 'noprocess', 5)
        .some((l) => /process is not defined/.test(JSON.stringify(l))),
    );
  });

  it('refuses a compatibility flag Kylix does not honour, saying which it does', async () => {
    const res = await node.client
      .json('POST', '/apis/kylix.dev/v1/namespaces/default/functions', {
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: { name: 'flagged' },
        spec: {
          code: 'export default { fetch() { return new Response("x"); } };',
          compatibilityFlags: ['streams_enable_constructors'],
        },
      })
      .catch((err: KylixError) => err);
    assert.ok(res instanceof Error);
    assert.match(
      JSON.stringify((res as KylixError).causes ?? res.message),
      /Kylix honours only nodejs_compat and nodejs_compat_v2/,
    );
  });

  it('serves a default export that extends WorkerEntrypoint, with this.env and this.ctx', async () => {
    const res = await fetch(node.url('/entry'));
    assert.equal(res.status, 200, JSON.stringify(node.platform.logs.tail('default', 'entry', 5)));
    assert.deepEqual(await res.json(), { mine: 'hello', same: true, ctx: 'function', url: '/entry' });
  });

  it('refuses other node: modules at build, naming those offered', async () => {
    const dir = writeProject({
      'fs.js': "import { readFileSync } from 'node:fs'; export default { fetch() {} };",
    });
    await assert.rejects(bundleFunction(`${dir}/fs.js`, dir), (err: KylixError) => {
      assert.equal(err.code, 'ERR_BUILD_FAILED');
      assert.match(
        err.causes?.[0]?.message ?? '',
        /"node:fs" is not available to functions\. Kylix offers node:assert/,
      );
      return true;
    });
  });
});
