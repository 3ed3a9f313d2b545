/**
 * Attacks on the per-request path after its rewrite (gateway.ts, gateway-call.ts, proxy.ts,
 * concurrency.ts, instance-channel.ts, pool.ts' lend): a client that goes away or
 * misbehaves at every stage of a request, HTTP/1.1 edge cases, functions that answer early, and a
 * sandbox process that never answers a start. Each test asserts the safe outcome: the gateway's
 * books (in-flight count, admission slots, instance leases) close, connections are not left stuck,
 * and what the supervisor holds for a tenant stays bounded.
 */
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTROL_PEER_JS, compromisedRuntime } from '../helpers/compromised-sandbox.js';
import { eventually } from '../helpers/eventually.js';
import { apply, writeProject } from '../helpers/platform.js';
import { rawHttp } from '../helpers/raw-http.js';
import { type Arena, arena } from './harness.js';

/** The gateway's port. */
const portOf = (a: Arena) => Number(new URL(a.node.url('/')).port);

/** A raw connection that collects everything the gateway writes back. */
function connect(port: number): { socket: Socket; text: () => string; closed: Promise<void> } {
  const socket = createConnection(port, '127.0.0.1');
  let out = '';
  socket.on('data', (d) => {
    out += d.toString('latin1');
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, text: () => out, closed };
}

/** How many HTTP responses (status lines) a raw answer holds. */
const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe('hostile: the per-request path', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await a.deploy({
      hold: {
        spec: 'limits:\n  maxConcurrency: 1',
        code: `export default { async fetch(request) { await new Promise((r) => setTimeout(r, 300)); return new Response('held'); } };`,
      },
      early: {
        // Refuses an upload without reading it, as an auth check does (after a lookup of 300 ms).
        code: `export default { async fetch(request) { await new Promise((r) => setTimeout(r, 300)); return new Response('no', { status: 401 }); } };`,
      },
      echo: {
        code: `export default { async fetch(request) {
          const body = request.body ? new Uint8Array(await request.arrayBuffer()).byteLength : 0;
          return new Response(request.method + ' ' + body + ' ' + (request.headers.get('upgrade') ?? '-'));
        } };`,
      },
      'abort-aware': {
        code: `export default { async fetch(request) {
          await new Promise((resolve) => request.signal.addEventListener('abort', resolve));
          console.log('aborted ' + new URL(request.url).pathname);
          return new Response('late');
        } };`,
      },
      'upload-aware': {
        code: `export default { async fetch(request) {
          request.signal.addEventListener('abort', () => console.log('upload aborted'));
          const r = request.body.getReader();
          for (;;) { const { done } = await r.read(); if (done) break; }
          return new Response('read all');
        } };`,
      },
      stream: {
        code: `export default { fetch(request) {
          request.signal.addEventListener('abort', () => console.log('stream aborted'));
          const chunk = new Uint8Array(16 * 1024);
          return new Response(new ReadableStream({ async pull(c) { await new Promise((r) => setTimeout(r, 5)); c.enqueue(chunk); } }));
        } };`,
      },
      framing: {
        code: `export default { fetch(request) {
          const p = new URL(request.url).pathname;
          if (p.endsWith('/no-content')) return new Response(null, { status: 204, headers: { 'content-length': '40' } });
          if (p.endsWith('/not-modified')) return new Response(null, { status: 304, headers: { 'content-length': '40' } });
          if (p.endsWith('/lying-length')) return new Response('short', { headers: { 'content-length': '400', 'transfer-encoding': 'chunked' } });
          if (p.endsWith('/smuggle')) return new Response('HTTP/1.1 200 OK\\r\\ncontent-length: 6\\r\\n\\r\\nforged');
          return new Response('x'.repeat(100));
        } };`,
      },
    });
  });
  after(async () => {
    await a.close();
  });

  const idle = () => eventually(() => a.node.platform.gateway.activeRequests() === 0, 5000);
  const fnLogs = (name: string) => a.node.platform.logs.tail('default', name, 1000).map((e) => e.message);

  it('HELD: a client that leaves while queued for admission gives its slot to the next one', async () => {
    await idle();
    // The function takes one request at a time; the second waits in its queue.
    const first = a.get('/hold');
    await eventually(() => a.node.platform.gateway.activeRequests() === 1);
    const c = connect(portOf(a));
    c.socket.write('GET /hold/queued HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // Nothing shows a request queued for admission from outside: time for it to get there.
    await sleep(100);
    c.socket.destroy();
    assert.equal(await (await first).text(), 'held');
    await idle();
    // The slot is free: the next one is served, not refused with 429.
    const next = await a.get('/hold');
    assert.equal(next.status, 200, await next.text());
    await idle();
    await a.neighbourOk();
  });

  it('HELD: a client that leaves mid-upload aborts the call and frees its slot', async () => {
    await idle();
    const c = connect(portOf(a));
    c.socket.write('POST /upload-aware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n');
    c.socket.write(Buffer.alloc(300 * 1024, 1));
    await eventually(() => a.node.platform.gateway.activeRequests() === 1);
    await sleep(100);
    c.socket.destroy();
    await idle();
    await eventually(() => fnLogs('upload-aware').includes('upload aborted'));
    await a.neighbourOk();
  });

  it('HELD: a client that leaves mid-stream aborts the stream and frees its slot', async () => {
    await idle();
    const c = connect(portOf(a));
    c.socket.write('GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await eventually(() => c.text().length > 20_000);
    c.socket.destroy();
    await idle();
    await eventually(() => fnLogs('stream').includes('stream aborted'));
  });

  it('HELD: pipelined requests behind a stuck one, then a disconnect: every call is aborted', async () => {
    await idle();
    const c = connect(portOf(a));
    c.socket.write(
      [1, 2, 3, 4]
        .map((n) => `POST /abort-aware/p${n} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc`)
        .join(''),
    );
    await eventually(() => a.node.platform.gateway.activeRequests() === 4);
    c.socket.destroy();
    await idle();
    await eventually(() =>
      [1, 2, 3, 4].every((n) => fnLogs('abort-aware').includes(`aborted /abort-aware/p${n}`)),
    );
  });

  it('a function that answers an upload without reading it does not leave the connection stuck', async () => {
    // A 401 to a large upload is common. The client goes on sending its body, then asks again on
    // the same connection: the gateway must drain the rest of the body (or close the connection),
    // not leave it unread for good.
    await idle();
    const c = connect(portOf(a));
    const body = 4 * 1024 * 1024;
    const first = 1024 * 1024;
    // The first MiB goes before the answer: more than the instance's window, which it never reads.
    c.socket.write(`POST /early HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body}\r\n\r\n`);
    c.socket.write(Buffer.alloc(first, 7));
    await eventually(() => statusLines(c.text()).length === 1, 5000);
    assert.match(c.text(), /^HTTP\/1\.1 401/);
    await idle();
    // The rest of the body, then a second request on the same connection.
    const sent = new Promise<void>((resolve) =>
      c.socket.write(Buffer.alloc(body - first, 7), () => resolve()),
    );
    c.socket.write('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const outcome = await Promise.race([
      (async () => {
        await sent;
        await eventually(() => statusLines(c.text()).length === 2, 10_000).catch(() => undefined);
        return statusLines(c.text()).length === 2 ? 'answered' : 'unanswered';
      })(),
      c.closed.then(() => 'closed'),
      sleep(5000).then(() => 'stuck'),
    ]);
    c.socket.destroy();
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log('early answer:', outcome);
    assert.ok(
      outcome === 'answered' || outcome === 'closed',
      `after the early answer the connection was ${outcome}: the rest of the upload was never read`,
    );
  });

  it('HELD: Upgrade: websocket is plain HTTP to a function; bytes after the head are never a request', async () => {
    await idle();
    const smuggled = 'GET /neighbour HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const out = await rawHttp(
      portOf(a),
      `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n${smuggled}`,
    );
    // Never 101, and the upgrade header never reaches the function (it is hop-by-hop).
    assert.doesNotMatch(out, /HTTP\/1\.1 101/);
    if (/HTTP\/1\.1 200/.test(out)) assert.match(out, /GET 0 -/);
    await idle();
  });

  it('HELD: CONNECT, and Transfer-Encoding with Content-Length, are refused without touching a function', async () => {
    await idle();
    const connect_ = await rawHttp(portOf(a), 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
    assert.doesNotMatch(connect_, /HTTP\/1\.1 2\d\d/);
    const both = await rawHttp(
      portOf(a),
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /neighbour HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    assert.match(both, /^HTTP\/1\.1 400/);
    assert.equal(statusLines(both).length, 1, both);
    assert.equal(a.node.platform.gateway.activeRequests(), 0);
  });

  it('HELD: HEAD, 204 and 304 answers with bodies or lying lengths keep the connection framed', async () => {
    await idle();
    const port = portOf(a);
    const req = (method: string, path: string) => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const out = await rawHttp(
      port,
      req('HEAD', '/framing') +
        req('GET', '/framing/no-content') +
        req('GET', '/framing/not-modified') +
        req('GET', '/framing/lying-length') +
        req('GET', '/framing/smuggle') +
        req('GET', '/echo'),
    );
    // The fifth answer's body is a forged response: it counts as a status line here, but stays
    // inside the body its length frames (44 bytes), and the last answer is echo's.
    const lines = statusLines(out);
    assert.deepEqual(
      lines,
      [200, 204, 304, 200, 200, 200, 200].map((s) => `HTTP/1.1 ${s}`),
      out,
    );
    assert.match(
      out,
      /content-length: 44\r\n[\s\S]*?\r\n\r\nHTTP\/1\.1 200 OK\r\ncontent-length: 6\r\n\r\nforgedHTTP\/1\.1 200/,
    );
    assert.match(out, /content-length: 5\r\n[\s\S]*?\r\n\r\nshortHTTP\/1\.1 200/);
    assert.match(out, /GET 0 -$/);
    await idle();
  });

  it('HELD: Expect: 100-continue on an upload over the limit is refused before the body is sent', async () => {
    await idle();
    const out = await rawHttp(
      portOf(a),
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.match(out, /413/);
    await idle();
  });
});

describe('hostile: a client that leaves during a cold start', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await a.deploy({
      // Loading takes 3 s of waiting (no CPU): within the start-up limit, but a long cold start.
      'slow-start': {
        spec: 'limits:\n  maxConcurrency: 1\n  cpuMs: 100',
        code: `await new Promise((r) => setTimeout(r, 3000));
export default { fetch(request) { if (new URL(request.url).pathname.endsWith('/loop')) for (;;) {} return new Response('warm'); } };`,
      },
    });
  });
  after(async () => {
    await a.close();
  });

  it('frees its admission slot and in-flight count at once, not when the start completes', async () => {
    // Stop the instance (CPU limit): the next request starts a new one, which takes 3 s.
    const stopped = await a.get('/slow-start/loop');
    assert.equal(stopped.status, 503, await stopped.text());
    await eventually(() => a.node.platform.gateway.activeRequests() === 0);
    // A client that gives up after 200 ms of the cold start.
    await assert.rejects(a.get('/slow-start', { signal: AbortSignal.timeout(200) }));
    const left = performance.now();
    await eventually(() => a.node.platform.gateway.activeRequests() === 0, 5000);
    const heldMs = performance.now() - left;
    // The next client (maxConcurrency 1) must not be refused for the slot of one that is gone.
    const next = await a.get('/slow-start');
    const text = await next.text();
    assert.ok(
      heldMs < 1000,
      `the gateway held the call of a client that had left for ${Math.round(heldMs)} ms (until the start completed)`,
    );
    assert.equal(next.status, 200, text);
  });
});

/**
 * A compromised sandbox process (its host code replaced): it starts the first instance (so the
 * function deploys), whose channel it closes on the first request, as a crash; every later start
 * it never answers. Stops are answered, so the process is not ended for ignoring them.
 */
const NEVER_READY = `
const net = require('node:net');
${CONTROL_PEER_JS}
ctl.on('close', () => process.exit(0));
let starts = 0;
onMessage((m) => {
  if (!m) return;
  if (m.type === 'stop') { send({ type: 'exited', id: m.id, code: 0 }); return; }
  if (m.type !== 'start') return;
  if (starts++ > 0) return;
  const ch = new net.Socket({ fd: m.instance.channelFd, readable: true, writable: true });
  ch.on('error', () => {});
  ch.on('data', () => ch.destroy());
  send({ type: 'ready', id: m.instance.id, startupMs: 1 });
});
send({ type: 'hello', pid: process.pid, nodeVersion: process.version });
setInterval(() => {}, 1 << 30);
`;

describe('hostile: a sandbox process that never answers an instance start', () => {
  let a: Arena;
  before(async () => {
    a = await arena({
      isolation: { bubblewrap: 'off', nodePath: compromisedRuntime('never-ready', NEVER_READY) },
    });
    const { ok } = await apply(
      a.node,
      writeProject({
        'kylix.yaml':
          'apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: stuck\n  namespace: never-ready\nspec:\n  source: ./f.js\n  routes:\n    - path: /stuck\n  limits:\n    timeoutMs: 1000\n',
        'f.js': "export default { fetch() { return new Response('x'); } };",
      }),
    );
    assert.ok(ok, 'the function did not deploy');
  });
  after(async () => {
    // The calls it holds would keep the gateway's drain waiting for its whole grace period.
    await a.node.platform.close(500);
    await a.close();
  });

  it('holds no gateway capacity for clients that gave up, and answers the ones that wait', async () => {
    // The first request "crashes" the only instance: the next one needs a start.
    const crashed = await a.get('/stuck');
    assert.equal(crashed.status, 502, await crashed.text());
    await eventually(() => a.node.platform.gateway.activeRequests() === 0);
    // Clients that give up while the start hangs.
    for (let i = 0; i < 3; i++) await assert.rejects(a.get('/stuck', { signal: AbortSignal.timeout(300) }));
    const leaked = await eventually(() => a.node.platform.gateway.activeRequests() === 0, 3000).then(
      () => 0,
      () => a.node.platform.gateway.activeRequests(),
    );
    // A client that waits gets an error once the supervisor gives up on the start (the sandbox's
    // 10 s wall-clock limit for loading a module, plus 10 s for booting), not never.
    const waited = await a.get('/stuck', { signal: AbortSignal.timeout(25_000) }).then(
      (r) => r.status,
      (e: Error) => e.name,
    );
    assert.equal(leaked, 0, `${leaked} calls of clients that had left were still in flight`);
    assert.ok(typeof waited === 'number' && waited >= 500, `a client that waited got ${waited}`);
    await a.neighbourOk();
  });
});
