/**
 * The guest realm holds an allow-list of Web-standard globals and frozen intrinsics: hostile functions
 * walk everything they can reach looking for host objects (sockets, handles, processes, dispatchers),
 * try undici's dispatcher for raw TCP, plant traps on shared prototypes for host code to trip, and
 * use stack-trace, timer and console tricks. Run with the OS layers on and off. A normal Workers
 * app (Hono, Web APIs) must keep working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { type Arena, arena, assertAllBlocked } from './harness.js';

const handler = (body: string) =>
  `export default { async fetch(request, env) { const r = {}; ${body}; return Response.json(r); } };`;

/** Every global a function may see (besides Infinity, NaN, undefined and Symbol.toStringTag). */
const ALLOWED = new Set(
  `globalThis eval isFinite isNaN parseFloat parseInt decodeURI decodeURIComponent encodeURI encodeURIComponent
  escape unescape Object Function Array Number Boolean String Symbol BigInt Date RegExp Promise Proxy Reflect
  JSON Math Intl Atomics WebAssembly Iterator Map Set WeakMap WeakSet WeakRef FinalizationRegistry ArrayBuffer
  SharedArrayBuffer DataView Int8Array Uint8Array Uint8ClampedArray Int16Array Uint16Array Int32Array
  Uint32Array Float16Array Float32Array Float64Array BigInt64Array BigUint64Array Error AggregateError
  EvalError RangeError ReferenceError SyntaxError TypeError URIError SuppressedError DisposableStack
  AsyncDisposableStack Request Response Headers FormData Blob File URL URLSearchParams URLPattern
  AbortController AbortSignal Event EventTarget CustomEvent DOMException TextEncoder TextDecoder
  TextEncoderStream TextDecoderStream CompressionStream DecompressionStream ReadableStream
  ReadableStreamDefaultReader ReadableStreamBYOBReader ReadableStreamBYOBRequest ReadableByteStreamController
  ReadableStreamDefaultController WritableStream WritableStreamDefaultController WritableStreamDefaultWriter
  TransformStream TransformStreamDefaultController ByteLengthQueuingStrategy CountQueuingStrategy atob btoa
  crypto Crypto CryptoKey SubtleCrypto structuredClone queueMicrotask MessageChannel MessagePort MessageEvent
  Buffer fetch console performance navigator setTimeout clearTimeout setInterval clearInterval
  self addEventListener removeEventListener scheduler caches
  Infinity NaN undefined`.split(/\s+/),
);

/** Walks everything reachable from the realm; reports host-looking objects with their path. */
const WALK = `
const HOSTLIKE = /Socket|Pipe|TCP|TTY|Process|Module|Worker|FileHandle|Dispatcher|Agent|Pool|Client|Server|Inspector|Loader|LockManager|StreamWrap|ProcessWrap/;
const GUESSES = ['undici.globalDispatcher.1', 'undici.globalDispatcher.2', 'undici.globalDispatcher.3', 'undici.globalDispatcher',
  'nodejs.util.inspect.custom', 'nodejs.util.promisify.custom', 'nodejs.worker_threads.SHARE_ENV', 'nodejs.rejection',
  'nodejs.webstream.isClosedPromise', 'nodejs.stream.destroyed', 'node:process', 'kylix'];
async function walk() {
  const roots = [['globalThis', globalThis], ['Object.getPrototypeOf(globalThis)', Object.getPrototypeOf(globalThis)]];
  for (const g of GUESSES) roots.push(['globalThis[Symbol.for(' + g + ')]', globalThis[Symbol.for(g)]]);
  const key = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
  const ch = new MessageChannel();
  const made = { request: new Request('http://x/', { method: 'POST', body: 'x' }), response: new Response(new ReadableStream()),
    blob: new Blob(['x']), file: new File(['x'], 'f'), form: new FormData(), key, port: ch.port1, decoder: new TextDecoder(),
    timer: setTimeout(() => {}, 1), signal: AbortSignal.timeout(1000), any: AbortSignal.any([new AbortController().signal]),
    gzip: new CompressionStream('gzip'), clone: structuredClone(new Map([[1, new Uint8Array(2)]])), url: new URL('http://x/?a=1'),
    pattern: typeof URLPattern === 'function' ? new URLPattern({ pathname: '/a' }) : 0, marks: (performance.mark('m'), performance.getEntries()),
    reader: new ReadableStream().getReader(), writer: new WritableStream().getWriter(), iter: [].values(), gen: (function* () {})(),
    asyncGen: (async function* () {})(), wasm: new WebAssembly.Memory({ initial: 1 }), seg: new Intl.Segmenter().segment('a b'),
    fetchErr: await fetch('http://127.0.0.1:1/').catch((e) => e), urlErr: (() => { try { new URL('::'); } catch (e) { return e; } })() };
  roots.push(['made', made], ['request', globalThis.__request]);
  const seen = new Set(); const hits = []; let visited = 0;
  const queue = roots.map(([path, v]) => [path, v, 0]);
  while (queue.length && visited < 60000) {
    const [path, o, depth] = queue.shift();
    if (!o || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
    seen.add(o); visited++;
    let name = ''; try { name = String(Object.getOwnPropertyDescriptor(o, 'constructor')?.value?.name ?? o.constructor?.name ?? ''); } catch {}
    let tag = ''; try { tag = Object.prototype.toString.call(o); } catch {}
    if ((HOSTLIKE.test(name) || HOSTLIKE.test(tag)) && !/WebAssembly.Module|AbstractModuleSource/.test(tag + name)) hits.push(path + ' = ' + name + ' ' + tag);
    if (depth >= 6) continue;
    queue.push([path + '.[[Prototype]]', Object.getPrototypeOf(o), depth + 1]);
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k); if (!d) continue;
      const p = path + '[' + String(k) + ']';
      if ('value' in d) { queue.push([p, d.value, depth + 1]); continue; }
      queue.push([p + '.get', d.get, depth + 1], [p + '.set', d.set, depth + 1]);
      try { queue.push([p, Reflect.get(o, k), depth + 1]); } catch {}
    }
  }
  return { hits, visited, globals: Reflect.ownKeys(globalThis).filter((k) => k !== '__request' && (typeof k === 'string' || globalThis[k] !== undefined)).map(String), protoKeys: Reflect.ownKeys(Object.getPrototypeOf(globalThis)).map(String) };
}
`;

/** Traps on shared intrinsics that host code would trip over, installed by one request. */
const TRAPS = `
const HOSTLIKE = /Socket|Pipe|TCP|Process|Server|IncomingMessage|ServerResponse|Handle|Worker|MessagePort|Int32Array|SharedArrayBuffer/;
const leaks = []; const installed = {};
const note = (what, v) => { try { if (v && (typeof v === 'object' || typeof v === 'function')) { const n = String(v.constructor?.name) + ' ' + Object.prototype.toString.call(v); if (HOSTLIKE.test(n)) leaks.push(what + ': GOT ' + n); } } catch {} };
const trap = (name, f) => { try { f(); installed[name] = 'GOT installed'; } catch (e) { installed[name] = 'blocked: ' + e.message; } };
function install() {
  for (const k of ['socket', '_handle', 'server', 'parser', 'incoming', 'res', 'req', '0', '1', 'then', 'on'])
    trap('Object.prototype setter ' + k, () => Object.defineProperty(Object.prototype, k, { configurable: true,
      set(v) { note(k, v); note(k + ' this', this); Object.defineProperty(this, k, { value: v, writable: true, configurable: true, enumerable: true }); } }));
  trap('__defineSetter__', () => Object.prototype.__defineSetter__('socket2', function (v) { note('socket2', v); }));
  trap('Object.prototype.toString', () => { Object.prototype.toString = function () { note('toString', this); return '[object Object]'; }; });
  trap('Object.prototype.__proto__', () => Object.defineProperty(Object.prototype, '__proto__', { get() { note('__proto__', this); return null; } }));
  const wrap = (holder, k, label) => trap(label, () => { const orig = holder[k]; holder[k] = function (...a) { note(label + ' this', this); a.forEach((x) => note(label, x)); return Reflect.apply(orig, this, a); }; if (holder[k] === orig) throw new Error('unchanged'); });
  wrap(Function.prototype, 'call', 'Function.prototype.call');
  wrap(Function.prototype, 'apply', 'Function.prototype.apply');
  wrap(Array.prototype, 'push', 'Array.prototype.push');
  wrap(Array.prototype, Symbol.iterator, 'Array.prototype[Symbol.iterator]');
  wrap(Object.getPrototypeOf([].values()), 'next', '%ArrayIteratorPrototype%.next');
  wrap(Map.prototype, 'get', 'Map.prototype.get');
  wrap(Promise.prototype, 'then', 'Promise.prototype.then');
  wrap(Atomics, 'store', 'Atomics.store');
  wrap(Atomics, 'compareExchange', 'Atomics.compareExchange');
  wrap(Object, 'keys', 'Object.keys');
  wrap(JSON, 'stringify', 'JSON.stringify');
  wrap(Buffer, 'byteLength', 'Buffer.byteLength');
  trap('Array.prototype.constructor (species)', () => { Array.prototype.constructor = function () {}; });
  trap('Promise.prototype.constructor (species)', () => { Promise.prototype.constructor = function () {}; });
  trap('Promise[Symbol.species]', () => Object.defineProperty(Promise, Symbol.species, { get() { note('species', this); return Promise; } }));
  trap('globalThis.Atomics', () => { globalThis.Atomics = { compareExchange(a) { note('usage', a); return 0; }, store(a) { note('usage', a); }, add(a) { note('usage', a); } }; });
  trap('globalThis.Buffer', () => { globalThis.Buffer = { byteLength(s) { return 1; } }; });
  trap('globalThis.ReadableStream', () => { globalThis.ReadableStream = class { constructor(source) { note('source', source); } }; });
  trap('Error.prepareStackTrace redefined', () => Object.defineProperty(Error, 'prepareStackTrace', { value: (e, s) => s }));
}
`;

const APP_SOURCE = `
import { Hono } from 'hono';
class AppError extends Error { constructor(m) { super(m); this.name = 'AppError'; this.message = 'app: ' + m; } }
function Legacy() {} Legacy.prototype = Object.create(Error.prototype); Legacy.prototype.constructor = Legacy;
const app = new Hono();
app.get('/app/json', (c) => c.json({ ok: true }));
app.get('/app/all', async (c) => {
  const out = {};
  out.digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc')))].slice(0, 2);
  out.url = new URL('/p?q=1', 'https://example.com').searchParams.get('q');
  const ts = new TransformStream({ transform(chunk, ctl) { ctl.enqueue(chunk.toUpperCase()); } });
  const w = ts.writable.getWriter(); w.write('hi'); w.close();
  out.stream = await new Response(ts.readable.pipeThrough(new TextEncoderStream())).text();
  out.gzip = (await new Response(new Blob(['zip']).stream().pipeThrough(new CompressionStream('gzip')).pipeThrough(new DecompressionStream('gzip'))).text());
  out.timer = await new Promise((res) => { const id = setTimeout((v) => res(v + typeof id), 5, 'fired-'); });
  out.interval = await new Promise((res) => { let n = 0; const id = setInterval(() => { if (++n === 3) { clearInterval(id); res(n); } }, 1); });
  out.cleared = await new Promise((res) => { const id = setTimeout(() => res('late'), 1); clearTimeout(id); setTimeout(() => res('cleared'), 5); });
  // The id of a timer that fired clears nothing, even when a newer timer took its place.
  out.stale = await new Promise((res) => { const a = setTimeout(() => { setTimeout(() => res('kept'), 2); clearTimeout(a); }, 1); setTimeout(() => res('lost'), 200); });
  out.clone = structuredClone({ d: new Date(0), m: new Map([[1, 2]]) }).m.get(1);
  out.b64 = atob(btoa('hello'));
  out.micro = await new Promise((res) => queueMicrotask(() => res('micro')));
  const err = new AppError('x'); out.error = err.name + '|' + err.message + '|' + String(err) + '|' + (err instanceof Error);
  out.legacy = new Legacy() instanceof Error;
  const o = {}; o.toString = () => 'custom'; out.override = String(o);
  out.random = typeof Math.random();
  out.perf = typeof performance.now() + typeof performance.timeOrigin;
  out.signal = AbortSignal.timeout(1000).aborted;
  out.headers = [...new Headers({ a: '1' })].length;
  out.form = new FormData().has('x');
  out.pattern = typeof URLPattern === 'function' ? new URLPattern({ pathname: '/u/:id' }).exec('https://x/u/7').pathname.groups.id : '7';
  out.uuid = crypto.randomUUID().length;
  out.navigator = typeof navigator.userAgent;
  out.chained = await Promise.resolve(1).then((x) => x + 1).finally(() => {});
  out.sorted = [3, 1, 2].toSorted().join('');
  console.log('logged', { a: 1 }, [1, 2]);
  console.table([{ a: 1 }]); console.count(); console.time('t'); console.timeEnd('t'); console.assert(true);
  return c.json(out);
});
export default app;
`;

for (const mode of ['on', 'off'] as const) {
  describe(`hostile: the guest realm is an allow-list (OS layers ${mode})`, () => {
    let a: Arena;
    before(async () => {
      a = await arena(mode === 'off' ? { isolation: { bubblewrap: 'off', cgroups: 'off' } } : {});
      const gateway = new URL(a.node.url('/')).port;
      const app = await build({
        stdin: { contents: APP_SOURCE, resolveDir: process.cwd(), loader: 'js' },
        bundle: true,
        format: 'esm',
        platform: 'neutral',
        write: false,
      });
      await a.deploy({
        walk: {
          code: `${WALK}\nexport default { async fetch(request) { globalThis.__request = request; const w = await walk(); delete globalThis.__request; return Response.json(w); } };`,
        },
        'raw-tcp': {
          code: handler(`
            for (const k of ['undici.globalDispatcher.1', 'undici.globalDispatcher.2', 'undici.globalDispatcher.3'])
              r[k] = await attempt(() => globalThis[Symbol.for(k)]);
            const d = globalThis[Symbol.for('undici.globalDispatcher.1')] || globalThis[Symbol.for('undici.globalDispatcher.2')];
            r.dispatch = await attempt(() => new Promise((res, rej) => d.dispatch({ origin: 'http://127.0.0.1:${gateway}', path: '/neighbour', method: 'GET' },
              { onConnect() {}, onHeaders(s) { res('GOT status ' + s); }, onData() {}, onComplete() {}, onError: rej })));
            r.loopback = await attempt(async () => (await fetch('http://127.0.0.1:${gateway}/neighbour')).status);
            r.fetchDispatcher = await attempt(async () => (await fetch('http://127.0.0.1:${gateway}/neighbour', { dispatcher: d })).status);
            r.socketGlobals = await attempt(() => globalThis.Socket || globalThis.net || globalThis.WebSocket || globalThis.EventSource || globalThis.process);`),
        },
        traps: {
          code: `${TRAPS}\nexport default { async fetch(request) { if (request.url.endsWith('/install')) install(); return Response.json({ installed, leaks }); } };`,
        },
        'realm-tricks': {
          code: handler(`
            r.ctorProcess = await attempt(() => globalThis.constructor.constructor('return process')());
            r.protoKeys = Reflect.ownKeys(Object.getPrototypeOf(globalThis)).filter((k) => k !== 'constructor').length ? 'GOT keys' : 'undefined';
            r.sloppyThis = await attempt(() => new Function('return this')().process ?? new Function('return this')().require);
            r.indirectEval = await attempt(() => (0, eval)('this').process);
            r.timerObject = await attempt(() => { const t = setTimeout(() => {}, 1); return typeof t === 'number' ? undefined : t; });
            r.timerThis = await new Promise((res) => setTimeout(function () { res(describe(this === globalThis ? undefined : this)); }, 1));
            r.consoleStreams = await attempt(() => console._stdout ?? console._stderr ?? console.Console ?? console.context);
            r.consoleSymbols = Object.getOwnPropertySymbols(console).length ? 'GOT symbols' : 'undefined';
            r.navigatorLocks = await attempt(() => navigator.locks);
            r.perfHost = await attempt(() => performance.markResourceTiming ?? performance.timerify ?? performance.eventLoopUtilization ?? performance.nodeTiming);
            r.setImmediate = await attempt(() => globalThis.setImmediate ?? globalThis.global ?? globalThis.BroadcastChannel ?? globalThis.Worker);
            const frames = [];
            Error.prepareStackTrace = (e, sites) => { frames.push(...sites); return 'trace'; };
            try { new URL('::'); } catch (e) { e.stack; }
            try { structuredClone(() => {}); } catch (e) { e.stack; }
            try { new Function('f', 'return f.call(this)')(function () { throw new Error('sloppy'); }); } catch (e) { e.stack; }
            await new Response('x').text().then(() => { try { new Response(null).body.getReader().read(1, 2); } catch (e) { e.stack; } });
            r.stackHook = Error.prepareStackTrace === undefined ? 'GOT removed' : 'undefined';
            Error.prepareStackTrace = undefined;
            r.frames = frames.length > 0 ? 'undefined' : 'GOT no frames';
            r.callSiteThis = frames.some((s) => s.getThis() !== undefined || s.getFunction() !== undefined) ? 'GOT this or function' : 'undefined';
            r.callSiteLeak = frames.some((s) => Object.getOwnPropertyNames(Object.getPrototypeOf(s)).some((k) => k !== 'getThis' && k !== 'getFunction' && typeof s[k]() === 'object' && s[k]() !== null)) ? 'GOT object' : 'undefined';
            r.stackLimit = (Error.stackTraceLimit = 20) === 20 ? 'undefined' : 'GOT';`),
        },
        app: { code: app.outputFiles[0]?.text ?? '' },
      });
    });
    after(() => a.close());

    it('a walk of everything reachable finds no host object, and only allow-listed globals', async () => {
      const r = await a.json<{ hits: string[]; visited: number; globals: string[]; protoKeys: string[] }>(
        '/walk',
      );
      assert.deepEqual(r.hits, []);
      assert.ok(r.visited > 1000, `walked only ${r.visited} objects`);
      assert.deepEqual(
        r.globals.filter((g) => !ALLOWED.has(g) && g !== 'Symbol(Symbol.toStringTag)'),
        [],
      );
      assert.deepEqual(r.protoKeys, ['constructor']);
      await a.neighbourOk();
    });

    it("undici's dispatcher is gone: no raw TCP, no loopback", async () => {
      assertAllBlocked(await a.json('/raw-tcp'));
      await a.neighbourOk();
    });

    it('traps on shared intrinsics cannot be planted, and host code hands them nothing', async () => {
      const first = await a.json<{ installed: Record<string, string> }>('/traps/install');
      assertAllBlocked(first.installed);
      // Requests make the host build sockets, messages and promises: a planted trap would fire now.
      for (let i = 0; i < 3; i++) await a.get('/traps', { method: 'POST', body: 'x' }).then((r) => r.text());
      const then = await a.json<{ leaks: string[] }>('/traps');
      assert.deepEqual(then.leaks, []);
      await a.neighbourOk();
    });

    it('globalThis tricks, stack traces, timers, console, performance and navigator lead nowhere', async () => {
      assertAllBlocked(await a.json('/realm-tricks'));
      await a.neighbourOk();
    });

    it('a Workers app (Hono, crypto, streams, timers, structuredClone…) still works', async () => {
      assert.deepEqual(await a.json('/app/json'), { ok: true });
      const r = await a.json('/app/all');
      assert.deepEqual(r, {
        digest: [186, 120],
        url: '1',
        stream: 'HI',
        gzip: 'zip',
        timer: 'fired-number',
        interval: 3,
        cleared: 'cleared',
        stale: 'kept',
        clone: 2,
        b64: 'hello',
        micro: 'micro',
        error: 'AppError|app: x|AppError: app: x|true',
        legacy: true,
        override: 'custom',
        random: 'number',
        perf: 'numbernumber',
        signal: false,
        headers: 1,
        form: false,
        pattern: '7',
        uuid: 36,
        navigator: 'string',
        chained: 2,
        sorted: '123',
      });
      // Log records travel apart from the response: wait for them.
      let logs: string[] = [];
      for (let i = 0; i < 100 && !logs.includes('default: 1'); i++) {
        logs = a.node.platform.logs.tail('default', 'app', 20).map((l) => l.message);
        if (!logs.includes('default: 1')) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(logs.includes('logged { a: 1 } [ 1, 2 ]'), JSON.stringify(logs));
      assert.ok(logs.includes('default: 1'), JSON.stringify(logs));
    });
  });
}
