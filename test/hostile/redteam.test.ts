/**
 * Red-team attacks on the redesigned bridge, realm and gateway (issue 9 follow-up): each test is an
 * attack through the real platform, asserting the safe outcome. Attacks that still work are marked
 * `todo: 'HOLE: …'` so the suite stays green while they are open.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { apply, writeProject } from '../helpers/platform.js';
import { rawHttp } from '../helpers/raw-http.js';
import { type Arena, arena, assertAllBlocked } from './harness.js';

const handler = (body: string) =>
  `export default { async fetch(request, env, ctx) { const r = {}; ${body}; return Response.json(r); } };`;

/** Polls the neighbour while `during` runs; returns the slowest answer in ms. */
async function worstNeighbourLatency(a: Arena, during: Promise<unknown>): Promise<number> {
  let done = false;
  void during.finally(() => {
    done = true;
  });
  let worst = 0;
  while (!done) {
    const t = performance.now();
    const res = await a.get('/neighbour', { signal: AbortSignal.timeout(20_000) });
    await res.text();
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 10));
  }
  return worst;
}

const STREAM = (s: string) =>
  `new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(${s})); c.close(); } })`;

describe('red team: functions answering what HTTP cannot say', () => {
  let a: Arena;
  let port: number;
  before(async () => {
    a = await arena();
    port = Number(new URL(a.node.url('/')).port);
    await a.deploy({
      // 1. A forged Response: an object made from Response.prototype with its own status 101.
      'fake-101': {
        code: `export default { fetch() {
          const r = Object.create(Response.prototype);
          Object.defineProperties(r, { status: { value: 101 }, statusText: { value: 'Switching Protocols' },
            headers: { value: new Headers({ upgrade: 'websocket', connection: 'upgrade' }) }, body: { value: null } });
          return r; } };`,
      },
      // 2. A subclass whose status getter answers 100 (an interim response) for a streamed body.
      'sub-100': {
        code: `class R extends Response { get status() { return 100; } }
          export default { fetch() { return new R(${STREAM("'after-interim'")}); } };`,
      },
      // 3. A streamed body longer than the Content-Length the function declares.
      'cl-lie': {
        code: `export default { fetch() {
          const extra = 'HTTP/1.1 200 OK\\r\\nContent-Length: 7\\r\\nX-Injected: 1\\r\\n\\r\\nhijack!';
          return new Response(${STREAM("'ok' + extra")}, { headers: { 'content-length': '2' } }); } };`,
      },
      // 4. A forged headers object with CR/LF in a value.
      'crlf-header': {
        code: `export default { fetch() {
          const headers = { forEach(cb) { cb('a\\r\\nSet-Cookie: pwned=1', 'x-a'); }, getSetCookie() { return []; } };
          const r = Object.create(Response.prototype);
          Object.defineProperties(r, { status: { value: 200 }, statusText: { value: '' }, headers: { value: headers }, body: { value: null } });
          return r; } };`,
      },
      // 5. A forged header name that is not a token, and a status text with CR/LF.
      'bad-head': {
        code: `export default { fetch(request) {
          const bad = new URL(request.url).searchParams.get('what');
          const headers = { forEach(cb) { if (bad === 'name') cb('v', 'x y:\\r\\nSet-Cookie: pwned=1'); }, getSetCookie() { return []; } };
          const r = Object.create(Response.prototype);
          Object.defineProperties(r, { status: { value: bad === 'status' ? 1000 : 200 },
            statusText: { value: bad === 'text' ? 'OK\\r\\nSet-Cookie: pwned=1' : '' }, headers: { value: headers }, body: { value: null } });
          return r; } };`,
      },
      // 6. Huge response head: a 48 MB header value, and a 4 MB status text.
      'huge-header': {
        spec: 'limits:\n  memoryMiB: 512\n  cpuMs: 20000',
        code: `export default { fetch() { return new Response('x', { headers: { 'x-big': 'a'.repeat(16 * 1024 * 1024) } }); } };`,
      },
      'huge-status': {
        code: `export default { fetch() { return new Response('x', { statusText: 'a'.repeat(4 * 1024 * 1024) }); } };`,
      },
      // 7. Set-Cookie and hop-by-hop headers the function sets on a streamed answer.
      'hop-headers': {
        code: `export default { fetch() { return new Response(${STREAM("'body'")}, { headers: { 'transfer-encoding': 'chunked', connection: 'close, x-a', 'kylix-request-id': 'forged', upgrade: 'h2c' } }); } };`,
      },
      echo: {
        code: `export default { async fetch(request) { return Response.json({ url: request.url, host: request.headers.get('host'), method: request.method,
          body: request.method === 'GET' || request.method === 'HEAD' ? '' : await request.text(), te: request.headers.get('transfer-encoding'), event: request.headers.get('kylix-event') }); } };`,
      },
    });
  });
  after(() => a.close());

  it('a forged Response with status 101 cannot switch the client connection', async () => {
    const out = await rawHttp(port, 'GET /fake-101 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.doesNotMatch(out, /^HTTP\/1\.1 1\d\d/, out);
    await a.neighbourOk();
  });

  it('a Response subclass cannot send an interim 1xx status', async () => {
    const out = await rawHttp(port, 'GET /sub-100 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.doesNotMatch(out, /^HTTP\/1\.1 1\d\d/, out);
  });

  it('a Content-Length shorter than the streamed body cannot inject a second response', async () => {
    const out = await rawHttp(
      port,
      'GET /cl-lie HTTP/1.1\r\nHost: x\r\n\r\nGET /neighbour HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    // The first answer's framing is the gateway's: whatever bytes the function streamed stay inside
    // its body. What follows it on the connection is the neighbour's own answer, not the function's.
    const headEnd = out.indexOf('\r\n\r\n');
    const head = out.slice(0, headEnd);
    let rest = out.slice(headEnd + 4);
    if (/transfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const line = rest.indexOf('\r\n');
        const size = Number.parseInt(rest.slice(0, line), 16);
        rest = rest.slice(line + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      rest = rest.slice(length);
    }
    assert.doesNotMatch(rest, /hijack!|X-Injected/i, out);
  });

  it('CR/LF in a forged header value is refused (502), nothing injected', async () => {
    const out = await rawHttp(port, 'GET /crlf-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 502/, out);
    assert.doesNotMatch(out, /pwned/);
  });

  for (const what of ['name', 'status', 'text'])
    it(`a forged invalid ${what} in the response head is refused (502 or a cut connection)`, async () => {
      const out = await rawHttp(
        port,
        `GET /bad-head?what=${what} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assert.ok(out === '' || /^HTTP\/1\.1 502/.test(out), out);
      assert.doesNotMatch(out, /pwned/);
    });

  it('a 16 MB response header is refused and does not stall the gateway for others', async () => {
    const call = a
      .get('/huge-header')
      .then(async (r) => ({
        status: r.status,
        len: (r.headers.get('x-big') ?? '').length,
        body: (await r.text()).slice(0, 300),
      }))
      .catch((e: Error) => ({ status: -1, len: 0, err: e.message }));
    const worst = await worstNeighbourLatency(a, call);
    const got = await call;
    assert.ok(worst < 300, `the neighbour waited ${Math.round(worst)} ms`);
    assert.equal(got.status, 502, JSON.stringify(got));
  });

  it('a 4 MB status text is not sent to the client', async () => {
    const out = await rawHttp(port, 'GET /huge-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.ok(
      out.split('\r\n')[0]!.length < 64 * 1024,
      `status line of ${out.split('\r\n')[0]!.length} bytes`,
    );
  });

  it('hop-by-hop and request-id headers of the function never reach the client', async () => {
    const out = await rawHttp(port, 'GET /hop-headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200/, out);
    assert.doesNotMatch(out, /forged|upgrade: h2c|x-a/i, out);
  });

  // Gateway oddities from a plain client.
  it('OPTIONS * and CONNECT are answered with an error, and the gateway keeps serving', async () => {
    const star = await rawHttp(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(star, /^HTTP\/1\.1 4\d\d/, star);
    const connect = await rawHttp(port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
    assert.doesNotMatch(connect, /^HTTP\/1\.1 2\d\d/, connect);
    await a.neighbourOk();
  });

  it('two Host headers are refused, not routed by one and shown to the function as the other', async () => {
    const out = await rawHttp(
      port,
      'GET /echo/h HTTP/1.1\r\nHost: a.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    );
    assert.doesNotMatch(out, /evil\.example/, out);
  });

  it('an absolute-form target does not change whom the request is routed to', async () => {
    const out = await rawHttp(
      port,
      'GET http://evil.example/neighbour HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.doesNotMatch(out, /^HTTP\/1\.1 5\d\d/, out);
    await a.neighbourOk();
  });

  it('trailers of a chunked body never reach the function as headers', async () => {
    const out = await rawHttp(
      port,
      'POST /echo/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: kylix-event\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nkylix-event: queue\r\n\r\n',
    );
    assert.match(out, /"body":"abc"/, out);
    assert.match(out, /"event":null/, out);
  });

  it('Expect: 100-continue with an absurd Content-Length gets 413, not a 100 and a held function', async () => {
    const out = await rawHttp(
      port,
      `POST /echo/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n`,
      800,
    );
    assert.match(out, /413/, out);
    await a.neighbourOk();
  });

  it('a Content-Length past 2^53 or with junk is refused (400)', async () => {
    for (const cl of ['99999999999999999999999', '1e3', '0x10', '-1', '5, 6'])
      assert.match(
        await rawHttp(port, `POST /echo/cl HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\nhello`),
        /^HTTP\/1\.1 400/,
        cl,
      );
  });

  it('a client that aborts mid-stream leaves the gateway and the function serving', async () => {
    for (let i = 0; i < 20; i++) {
      const socket = createConnection(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        `POST /echo/abort HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(70000)}`,
      );
      await new Promise((r) => setTimeout(r, 20));
      socket.destroy();
    }
    const res = await a.get('/echo/after');
    assert.equal(res.status, 200);
    await a.neighbourOk();
  });
});

describe('red team: limits that do not see everything', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await a.deploy({
      // CPU burnt on libuv's thread pool (PBKDF2) while the instance's own thread is idle.
      pbkdf2: {
        spec: 'limits:\n  cpuMs: 100\n  timeoutMs: 60000',
        code: `export default { async fetch() {
          const key = await crypto.subtle.importKey('raw', new Uint8Array(16), 'PBKDF2', false, ['deriveBits']);
          const t = Date.now();
          await Promise.all([0, 1, 2, 3].map((i) => crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-512', salt: new Uint8Array([i]), iterations: 400_000 }, key, 256)));
          return new Response('derived in ' + (Date.now() - t) + ' ms'); } };`,
      },
      // CPU in V8's background compiler: a big Wasm module compiled off the thread.
      'log-spoof': {
        code: `export default { fetch() { console.log('Instance stopped: a request used more than 1 ms of CPU time\\n[platform] neighbours/neighbour: ${'${'}"secret"}'); return new Response('ok'); } };`,
      },
    });
  });
  after(() => a.close());

  it('CPU burnt on the thread pool (crypto.subtle) counts against cpuMs', async () => {
    const res = await a.get('/pbkdf2');
    const body = await res.text();
    assert.equal(res.status, 503, body);
  });
});

const REALM = `
const HOSTLIKE = /Socket|Pipe|TCP|TTY|Process|Worker|FileHandle|Dispatcher|Agent|Pool|Client|Server|Inspector|MessagePort.*parent|InstanceServer|IncomingMessage/;
const hostish = (v) => { try { if (!v || (typeof v !== 'object' && typeof v !== 'function')) return false;
  const n = String(v.constructor?.name) + ' ' + Object.prototype.toString.call(v); return HOSTLIKE.test(n) || 'channelFd' in v || 'rpc' in v || '_handle' in v; } catch { return false; } };
const walkFind = (root, depth = 5) => { const seen = new Set(); const q = [[root, 0]]; while (q.length) { const [o, d] = q.shift();
  if (!o || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o) || seen.size > 2000) continue; seen.add(o);
  if (hostish(o)) return o; if (d >= depth) continue; q.push([Object.getPrototypeOf(o), d + 1]);
  for (const k of Reflect.ownKeys(o)) { const desc = Object.getOwnPropertyDescriptor(o, k); if (!desc) continue;
    if ('value' in desc) q.push([desc.value, d + 1]); else { q.push([desc.get, d + 1]); try { q.push([Reflect.get(o, k), d + 1]); } catch {} } } } return undefined; };
`;

describe('red team: reaching host objects from the realm', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await a.deploy({
      reflect: {
        spec: 'limits:\n  cpuMs: 20000',
        code: `${REALM}\n${handler(`
          const proto = Object.getPrototypeOf(request);
          const got = [];
          for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
            for (const self of [{}, Object.create(proto), new Request('http://x/'), Object.create(Response.prototype)]) {
              try { const v = d.get ? d.get.call(self) : undefined; if (hostish(v)) got.push(k); } catch {}
            }
          }
          r.craftedThis = got.length ? 'GOT ' + got.join(',') : 'undefined';
          r.responseTextOnFake = await attempt(() => Response.prototype.text.call(Object.create(Response.prototype)));
          r.responseHeadersOnRequest = await attempt(() => Object.getOwnPropertyDescriptor(Response.prototype, 'headers').get.call(request));
          r.realRequestInternals = await attempt(() => walkFind(new Request(request)));
          r.signalInternals = await attempt(() => walkFind(request.signal, 6));
          r.cloneRequest = await attempt(() => walkFind(structuredClone(request), 4));
          r.cloneSignal = await attempt(() => walkFind(structuredClone(request.signal), 4));
          r.weakMapHijack = await attempt(() => { WeakMap.prototype.get = () => ({}); return WeakMap.prototype.get(1); });
          r.lightProtoPlant = await attempt(() => { Object.defineProperty(proto, 'planted', { get() { return hostish(this) ? this : undefined; } }); return request.planted; });`)}`,
      },
      'port-transfer': {
        code: `${REALM}\n${handler(`
          const ch = new MessageChannel();
          const got = await new Promise((res) => { ch.port2.onmessage = (e) => res(e); try { ch.port1.postMessage({ s: request.signal }, []); } catch (e) { res(e); } setTimeout(() => res(undefined), 200); });
          r.signalPost = await attempt(() => got && !(got instanceof Error) ? walkFind(got, 4) : undefined);
          const ch2 = new MessageChannel();
          const got2 = await new Promise((res) => { ch2.port2.onmessage = (e) => res(e.ports); ch2.port1.postMessage(null, [new MessageChannel().port1]); setTimeout(() => res([]), 200); });
          r.portWalk = await attempt(() => walkFind(got2, 5));
          r.eventWalk = await attempt(() => walkFind(new MessageChannel().port1, 6));`)}`,
      },
      'inspect-custom': {
        code: `${REALM}\n${handler(`
          const found = [];
          console.log({ [Symbol.for('nodejs.util.inspect.custom')](depth, options, inspect) { found.push(walkFind(options, 4), walkFind(inspect, 4), options && options.stylize && walkFind(options.stylize, 4)); return 'x'; } });
          r.inspectCustom = await attempt(() => found.find(Boolean));
          const errs = [];
          Error.prepareStackTrace = (e, s) => { errs.push(e); return 'x'; };
          const ac = new AbortController(); const p = fetch('http://127.0.0.1:9/', { signal: ac.signal }).catch((e) => e); ac.abort(); await p;
          await new Response(new ReadableStream({ pull() { throw new Error('x'); } })).text().catch((e) => e.stack);
          try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([255])); } catch (e) { e.stack; }
          await new Promise((res) => setTimeout(res, 50));
          Error.prepareStackTrace = undefined;
          r.prepareStackErrors = await attempt(() => errs.map((e) => walkFind(e, 4)).find(Boolean));`)}`,
      },
      finalization: {
        code: `${REALM}\n${handler(`
          const held = [];
          const fr = new FinalizationRegistry((v) => held.push(v));
          for (let i = 0; i < 1000; i++) fr.register({}, i);
          const weak = new WeakRef(request);
          r.weakDeref = await attempt(() => walkFind(weak.deref(), 4));
          r.wasmImportHost = await attempt(async () => { const bytes = new Uint8Array([0,97,115,109,1,0,0,0]); const m = await WebAssembly.compile(bytes); return WebAssembly.Module.imports(m).length ? 'x' : walkFind(m, 4); });`)}`,
      },
    });
  });
  after(() => a.close());

  for (const name of ['reflect', 'port-transfer', 'inspect-custom', 'finalization'])
    it(`${name}: nothing of the host is reachable`, async () => {
      const r = await a.json<Record<string, string>>(`/${name}`);
      if (process.env.KYLIX_HOSTILE_DEBUG) console.log(name, r);
      assertAllBlocked(r);
      await a.neighbourOk();
    });
});

describe('red team: the egress proxy', () => {
  let a: Arena;
  let upstream: Server;
  let upstreamPort = 0;
  let loopback: Server;
  let loopbackPort = 0;
  const seen: { method?: string; url?: string; headers: IncomingMessage['headers'] }[] = [];
  let loopbackHits = 0;
  before(async () => {
    upstream = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      if (req.url?.startsWith('/hang')) return; // never answers
      req.resume();
      req.on('end', () => res.end('up'));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.2', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
    loopback = createServer((_req, res) => {
      loopbackHits++;
      res.end('loopback');
    });
    await new Promise<void>((r) => loopback.listen(0, '127.0.0.1', r));
    loopbackPort = (loopback.address() as AddressInfo).port;
    a = await arena({ isolation: { egressAllowCidrs: ['127.0.0.2/32'] } });
    const up = `http://127.0.0.2:${upstreamPort}`;
    await a.deploy({
      'egress-smuggle': {
        spec: `egress:\n  allow: ["127.0.0.2", "127.0.0.1"]`,
        code: handler(`
          const second = 'GET / HTTP/1.1\\r\\nHost: x\\r\\nx-kylix-egress-url: http://127.0.0.1:${loopbackPort}/\\r\\n\\r\\n';
          r.clZero = await attempt(async () => { const res = await fetch('${up}/a', { method: 'POST', headers: { 'content-length': '0' }, body: second }); const t = await res.text(); return t.includes('loopback') ? t : undefined; });
          r.teAndCl = await attempt(async () => { const res = await fetch('${up}/b', { method: 'POST', headers: { 'transfer-encoding': 'chunked', 'content-length': '4' }, body: '0\\r\\n\\r\\n' + second }); const t = await res.text(); return t.includes('loopback') ? t : undefined; });
          r.ownUrlHeader = await attempt(async () => { const t = await (await fetch('${up}/c', { headers: { 'x-kylix-egress-url': 'http://127.0.0.1:${loopbackPort}/' } })).text(); return t.includes('loopback') ? t : undefined; });
          r.methodInjection = await attempt(() => fetch('${up}/d', { method: 'GET / HTTP/1.1\\r\\nX: y' }));
          r.connect = await attempt(() => fetch('${up}/e', { method: 'CONNECT' }));
          r.upgrade = await attempt(async () => { const res = await fetch('${up}/f', { headers: { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-key': 'x' } }); return res.status === 101 ? 'switched' : undefined; });
          r.loopbackDirect = await attempt(() => fetch('http://127.0.0.1:${loopbackPort}/'));
          r.loopbackRedirect = await attempt(() => fetch('http://[::ffff:127.0.0.1]:${loopbackPort}/'));`),
      },
      'egress-hold': {
        spec: `egress:\n  allow: ["127.0.0.2"]\nlimits:\n  timeoutMs: 60000`,
        code: `let held = 0; export default { async fetch(request) {
          const n = Number(new URL(request.url).searchParams.get('n') ?? 0);
          for (let i = 0; i < n; i++) { held++; fetch('${up}/hang' + i, { method: 'POST', body: new ReadableStream({ pull() { return new Promise(() => {}); } }), duplex: 'half' }).catch(() => {}); }
          await new Promise((r) => setTimeout(r, 1500));
          return new Response(String(held)); } };`,
      },
    });
  });
  after(async () => {
    await a.close();
    upstream.closeAllConnections();
    upstream.close();
    loopback.close();
  });

  it('smuggling, method injection, CONNECT, upgrade and a forged target header stay inside the policy', async () => {
    const r = await a.json<Record<string, string>>('/egress-smuggle');
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(r, seen);
    assertAllBlocked(r);
    assert.equal(loopbackHits, 0);
    for (const s of seen) {
      assert.ok(!s.headers.upgrade, JSON.stringify(s));
      assert.ok(!(s.headers['content-length'] && s.headers['transfer-encoding']), JSON.stringify(s));
    }
  });

  it("one function cannot hold an unbounded number of the supervisor's sockets through egress", async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const res = await a.get('/egress-hold?n=400');
    assert.equal(res.status, 200);
    await res.text();
    // Each request the upstream holds open is one accepted Unix socket and one TCP socket in the supervisor.
    const held = seen.filter((s) => s.url?.startsWith('/hang')).length;
    await a.neighbourOk();
    assert.ok(
      held < 256,
      `the supervisor relays ${held} hanging connections for one function (fds +${fds() - before})`,
    );
  });
});

describe('red team: cross-namespace resources and routes', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
  });
  after(() => a.close());

  const tryApply = async (files: Record<string, string>) => {
    try {
      const { ok } = await apply(a.node, writeProject(files));
      return ok ? 'applied' : 'not ready';
    } catch (err) {
      return `refused: ${(err as Error).message}`;
    }
  };

  it('a binding cannot name a resource of another namespace', async () => {
    await apply(
      a.node,
      writeProject({
        'kylix.yaml':
          'apiVersion: kylix.dev/v1\nkind: KeyValue\nmetadata:\n  name: kv\n  namespace: neighbours\nspec: {}\n',
      }),
    );
    for (const ref of ['neighbours/kv', '../neighbours/kv', 'neighbours_kv', 'kv']) {
      const got = await tryApply({
        'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: xns\nspec:\n  source: ./f.js\n  routes:\n    - path: /xns\n  bindings:\n    KV:\n      keyValue: ${JSON.stringify(ref)}\n`,
        'f.js': `export default { async fetch(request, env) { try { await env.KV.put('stolen', 'x'); return new Response('put'); } catch (e) { return new Response('blocked: ' + e.message); } } };`,
      });
      if (got !== 'applied') continue;
      const text = await (await a.get('/xns')).text();
      assert.doesNotMatch(text, /^put$/, `${ref}: ${text}`);
    }
    // Whatever happened, the neighbour's KeyValue has no key written by another namespace.
    const { data } = await a.node.client.json<unknown>(
      'GET',
      a.node.client.path('keyvalues', 'kv', 'neighbours'),
    );
    assert.ok(data);
    await a.neighbourOk();
  });

  it("another namespace cannot claim the neighbour's paths with a host, a tag prefix or a case variant", async () => {
    for (const route of [
      '{ host: "a--b.example", path: "/neighbour/x" }',
      '{ host: "B.EXAMPLE", path: "/neighbour" }',
      '{ path: "/neighbour/:id" }',
      '{ path: "/:p" }',
    ]) {
      const got = await tryApply({
        'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: thief\n  namespace: thieves\nspec:\n  source: ./f.js\n  routes:\n    - ${route}\n`,
        'f.js': `export default { fetch() { return new Response('stolen'); } };`,
      });
      void got;
      for (const [host, path] of [
        ['a--b.example', '/neighbour/x'],
        ['b.example', '/neighbour'],
        ['x', '/neighbour/1'],
        ['x', '/neighbour'],
      ] as const) {
        const res = await a.get(path, { headers: { host } });
        assert.notEqual(await res.text(), 'stolen', `${route} took ${host}${path}`);
      }
    }
    await a.neighbourOk();
  });
});
