/**
 * Hostile functions trying to starve their neighbours or take the node down: loops, memory bombs,
 * timer and log floods, endless and giant responses, slow and vanishing clients, crowds, slow
 * start-up and oversized bundles. Each is a function deployed through the real platform; each test
 * asserts the abuse was stopped with its own error and that a neighbour kept answering.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { KylixError } from '../../src/errors.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, writeProject } from '../helpers/platform.js';
import { type Arena, arena } from './harness.js';

const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

/** These checks wait on sandbox limits and log floods: they get 10 s. */
const WAIT_MS = 10_000;

describe('hostile: starving neighbours and the node', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    const ok = `if (new URL(request.url).pathname.endsWith('/ok')) return new Response('ok');`;
    await a.deploy({
      'sync-loop': {
        spec: 'limits:\n  cpuMs: 100',
        code: `export default { fetch(request) { ${ok} for (;;) {} } };`,
      },
      'microtask-loop': {
        spec: 'limits:\n  cpuMs: 100',
        code: `export default { async fetch(request) { ${ok} for (;;) await null; } };`,
      },
      'queue-microtask-loop': {
        spec: 'limits:\n  cpuMs: 100',
        code: `export default { fetch(request) { ${ok} return new Promise(() => { const spin = () => queueMicrotask(spin); spin(); }); } };`,
      },
      'loop-after-response': {
        spec: 'limits:\n  cpuMs: 100',
        code: `let n = 0; export default { fetch(request) { ${ok} if (n++ === 0) setTimeout(() => { for (;;) {} }, 5); return new Response('answered ' + n); } };`,
      },
      'busy-async': {
        spec: 'limits:\n  cpuMs: 200',
        code: `export default { async fetch(request) { ${ok} for (;;) { const end = Date.now() + 20; while (Date.now() < end) {} await new Promise((r) => setTimeout(r, 0)); } } };`,
      },
      'heap-bomb': {
        // CPU to spare: on a slow machine, filling 32 MiB with small objects (and the collector's
        // work between) took over the default 1 s of CPU, and the CPU limit ended it first.
        spec: 'limits:\n  memoryMiB: 32\n  cpuMs: 10000',
        code: `export default { fetch(request) { ${ok} const keep = []; for (;;) keep.push({ a: Math.random(), b: [1, 2, 3], c: 'x' + keep.length }); } };`,
      },
      'arraybuffer-bomb': {
        spec: 'limits:\n  memoryMiB: 32',
        code: `const keep = []; export default { fetch(request) { ${ok} for (let i = 0; i < 64; i++) { const b = new Uint8Array(32 * 1024 * 1024); b.fill(1); keep.push(b); } return new Response('survived ' + keep.length); } };`,
      },
      'wasm-memory-bomb': {
        spec: 'limits:\n  memoryMiB: 32',
        code: `export default { fetch(request) { ${ok} const mem = new WebAssembly.Memory({ initial: 1, maximum: 32768 }); for (let i = 0; i < 64; i++) { mem.grow(512); new Uint8Array(mem.buffer).fill(1); } return new Response('survived ' + mem.buffer.byteLength); } };`,
      },
      'timer-flood': {
        spec: 'limits:\n  cpuMs: 200',
        code: `export default { fetch(request) { ${ok} for (let i = 0; i < 20000; i++) setInterval(() => { Math.sqrt(i); }, 0); return new Promise(() => {}); } };`,
      },
      'log-flood': {
        spec: 'limits:\n  cpuMs: 300',
        code: `export default { fetch(request) { ${ok} for (;;) console.log('flood '.repeat(200)); } };`,
      },
      'stack-overflow': {
        code: `export default { fetch(request) { ${ok} const f = (n) => f(n + 1) + 1; return new Response(String(f(0))); } };`,
      },
      'endless-stream': {
        spec: 'limits:\n  timeoutMs: 500',
        code: `export default { fetch(request) { ${ok} const chunk = new Uint8Array(1024); return new Response(new ReadableStream({ async pull(c) { await new Promise((r) => setTimeout(r, 5)); c.enqueue(chunk); } })); } };`,
      },
      'giant-stream': {
        code: `let pulled = 0; export default { fetch(request) { ${ok} if (new URL(request.url).pathname.endsWith('/pulled')) return new Response(String(pulled)); const chunk = new Uint8Array(64 * 1024); return new Response(new ReadableStream({ pull(c) { pulled++; c.enqueue(chunk); } }, { highWaterMark: 1 })); } };`,
      },
      hang: {
        spec: 'limits:\n  timeoutMs: 300',
        code: `export default { fetch(request) { ${ok} return new Promise(() => {}); } };`,
      },
      'abort-aware': {
        code: `export default { async fetch(request) { ${ok} await new Promise((resolve) => request.signal.addEventListener('abort', resolve)); console.log('aborted: ' + request.signal.reason?.name); return new Response('late'); } };`,
      },
      crowd: {
        spec: 'limits:\n  maxConcurrency: 2',
        code: `export default { async fetch(request) { ${ok} await new Promise((r) => setTimeout(r, 400)); return new Response('served'); } };`,
      },
    });
  });
  after(async () => {
    await a.close();
  });

  const stopsWith = (name: string, title: string, status: number, code: string) =>
    it(title, async () => {
      const res = await a.get(`/${name}`);
      const body = await res.text();
      const log = () => JSON.stringify(a.node.platform.logs.tail('default', name, 5).map((e) => e.message));
      assert.equal(res.status, status, `${body} ${log()}`);
      assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, code, `${body} ${log()}`);
      await a.neighbourOk();
      // The function itself recovers: the next request gets a fresh instance.
      assert.equal(await (await a.get(`/${name}/ok`)).text(), 'ok');
    });

  stopsWith(
    'sync-loop',
    'a synchronous infinite loop is stopped with 503 ERR_CPU_LIMIT',
    503,
    'ERR_CPU_LIMIT',
  );
  stopsWith(
    'microtask-loop',
    'a microtask infinite loop is stopped with 503 ERR_CPU_LIMIT',
    503,
    'ERR_CPU_LIMIT',
  );
  stopsWith(
    'queue-microtask-loop',
    'an endless queueMicrotask chain is stopped with 503 ERR_CPU_LIMIT',
    503,
    'ERR_CPU_LIMIT',
  );
  stopsWith('busy-async', 'CPU time spread over many turns is added up and stopped', 503, 'ERR_CPU_LIMIT');
  stopsWith(
    'heap-bomb',
    'a heap bomb is stopped by the heap cap with 503 ERR_MEMORY_LIMIT',
    503,
    'ERR_MEMORY_LIMIT',
  );
  stopsWith(
    'arraybuffer-bomb',
    'an ArrayBuffer bomb is stopped with 503 ERR_MEMORY_LIMIT',
    503,
    'ERR_MEMORY_LIMIT',
  );
  stopsWith(
    'wasm-memory-bomb',
    'a WebAssembly memory bomb is stopped with 503 ERR_MEMORY_LIMIT',
    503,
    'ERR_MEMORY_LIMIT',
  );
  stopsWith('timer-flood', 'a timer flood is stopped with 503 ERR_CPU_LIMIT', 503, 'ERR_CPU_LIMIT');
  stopsWith(
    'hang',
    'a handler that never answers gets 504 ERR_TIMEOUT and its instance is replaced',
    504,
    'ERR_TIMEOUT',
  );

  it('a loop started after the response is stopped, and the function serves again', async () => {
    assert.equal(await (await a.get('/loop-after-response')).text(), 'answered 1');
    await a.neighbourOk();
    // The stuck instance is stopped; a new one (n starts again) answers.
    await eventually(
      async () =>
        (await a.get('/loop-after-response', { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.text(),
          () => '',
        )) === 'answered 1',
      WAIT_MS,
    );
    await a.neighbourOk();
  });

  it('a log flood is cut: the log keeps a bounded number of lines and says how many were dropped', async () => {
    const res = await a.get('/log-flood');
    assert.equal(await errorCode(res), 'ERR_CPU_LIMIT');
    await a.neighbourOk();
    await eventually(
      () =>
        a.node.platform.logs
          .tail('default', 'log-flood', 10_000)
          .some((e) => /log lines dropped/.test(e.message)),
      WAIT_MS,
    );
    assert.ok(a.node.platform.logs.tail('default', 'log-flood', 100_000).length < 2000);
  });

  it('a stack overflow is an exception (502), not a crash of the instance', async () => {
    const res = await a.get('/stack-overflow');
    assert.equal(res.status, 502);
    assert.equal(await errorCode(res), 'ERR_FUNCTION_THREW');
    await a.neighbourOk();
  });

  it('an endless response stream is cut at the wall-time limit', async () => {
    const started = Date.now();
    const res = await a.get('/endless-stream');
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer());
    assert.ok(Date.now() - started < 5000);
    await a.neighbourOk();
    assert.equal(await (await a.get('/endless-stream/ok')).text(), 'ok');
  });

  it('a giant response to a slow reader is held by backpressure, not buffered', async () => {
    // A client that reads nothing for a while: the function's stream must not run ahead.
    const req = request(a.node.url('/giant-stream'));
    const got = new Promise<import('node:http').IncomingMessage>((resolve) => req.on('response', resolve));
    req.end();
    const res = await got;
    res.pause();
    await new Promise((r) => setTimeout(r, 500));
    const pulled = Number(await (await a.get('/giant-stream/pulled')).text());
    // Socket buffers hold a few MiB at most; 64 KiB chunks without backpressure would be thousands.
    assert.ok(pulled < 400, `the function produced ${pulled} chunks for a client that read none`);
    await a.neighbourOk();
    res.destroy();
    req.destroy();
  });

  it('a client that disconnects aborts request.signal inside the function', async () => {
    const controller = new AbortController();
    const pending = a.get('/abort-aware', { signal: controller.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    await pending;
    await eventually(
      () =>
        a.node.platform.logs.tail('default', 'abort-aware').some((e) => e.message === 'aborted: AbortError'),
      WAIT_MS,
    );
    await a.neighbourOk();
  });

  it('a client that pipelines requests and disconnects aborts every one and frees their slots', async () => {
    // Node keeps the responses of pipelined requests queued behind the first one, without a socket;
    // when the client goes away it forgets them, and no 'close' ever comes for them.
    const aborted = () =>
      a.node.platform.logs.tail('default', 'abort-aware').filter((e) => e.message === 'aborted: AbortError')
        .length;
    const before = aborted();
    const port = Number(new URL(a.node.url('/')).port);
    const socket = createConnection(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write([1, 2, 3].map((n) => `GET /abort-aware/${n} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`).join(''));
    await eventually(() => a.node.platform.gateway.activeRequests() === 3, WAIT_MS);
    socket.destroy();
    await eventually(() => a.node.platform.gateway.activeRequests() === 0, WAIT_MS);
    await eventually(() => aborted() === before + 3, WAIT_MS);
    await a.neighbourOk();
  });

  it('requests past maxConcurrency get 429 with Retry-After, at once', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => a.get('/crowd')));
    const statuses = results.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 200).length, 2);
    assert.equal(statuses.filter((s) => s === 429).length, 4);
    const refused = results.find((r) => r.status === 429)!;
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(await errorCode(refused), 'ERR_TOO_MANY_REQUESTS');
    await a.neighbourOk();
  });

  it('a module whose start-up takes over 1 s is refused at apply with a clear error', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('slow-start', './s.js', ['/slow-start']),
      's.js':
        'const end = Date.now() + 1500; while (Date.now() < end) {}\nexport default { fetch() { return new Response("x"); } };',
    });
    const { ok } = await apply(a.node, dir);
    assert.equal(ok, false);
    const fn = await a.node.client.get('functions', 'slow-start');
    assert.match(
      fn.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '',
      /took more than 1000 ms of CPU/,
    );
    await a.neighbourOk();
  });

  it('a module whose top-level await never settles is refused at apply', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('never-start', './s.js', ['/never-start']),
      's.js': 'await new Promise(() => {});\nexport default { fetch() { return new Response("x"); } };',
    });
    const { ok } = await apply(a.node, dir);
    assert.equal(ok, false);
    await a.neighbourOk();
  });

  it('a bundle over the size limit is refused at apply with 413 ERR_BUNDLE_TOO_LARGE', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('huge', './h.js', ['/huge']),
      'h.js': `const blob = ${JSON.stringify('x'.repeat(11 * 1024 * 1024))};\nexport default { fetch() { return new Response(blob.slice(0, 1)); } };`,
    });
    await assert.rejects(apply(a.node, dir), (err: KylixError) => {
      assert.equal(err.code, 'ERR_BUNDLE_TOO_LARGE');
      assert.match(err.message, /over this installation's limit/);
      return true;
    });
    await a.neighbourOk();
  });
});
