/**
 * The realm a function's code runs in. Host code (the instance's HTTP server, Node's internals) shares
 * this realm, so hardening is two things:
 *
 * 1. An allow-list of globals: the ECMAScript intrinsics and the Web APIs a Workers function uses
 *    (GUEST_GLOBALS). Every other own key of globalThis, strings and symbols alike, is removed, so no
 *    Node global (process, require, Worker, BroadcastChannel, WebSocket, undici's dispatcher under
 *    Symbol.for keys…) survives because a deny-list forgot it. console, performance, navigator and
 *    the timers are replaced by plain objects that reach no stream, lock manager or timer list.
 * 2. The intrinsics are frozen: a function cannot plant a getter or setter on Object.prototype (or
 *    replace Function.prototype.call, Atomics.store, a global the host reads…) and so be handed the
 *    host's sockets, handles or shared memory when host code touches them.
 *
 * This is a seat-belt inside the OS sandbox, not the boundary itself.
 */

import {
  guestConsole,
  guestEventListeners,
  guestNavigator,
  guestPerformance,
  guestScheduler,
  guestTimers,
} from './guest-globals.js';

/** Globals a function sees, besides `fetch` (the guest one) and the replacements below. */
const GUEST_GLOBALS = new Set<string | symbol>([
  // ECMAScript
  'globalThis',
  'Infinity',
  'NaN',
  'undefined',
  'eval',
  'isFinite',
  'isNaN',
  'parseFloat',
  'parseInt',
  'decodeURI',
  'decodeURIComponent',
  'encodeURI',
  'encodeURIComponent',
  'escape',
  'unescape',
  'Object',
  'Function',
  'Array',
  'Number',
  'Boolean',
  'String',
  'Symbol',
  'BigInt',
  'Date',
  'RegExp',
  'Promise',
  'Proxy',
  'Reflect',
  'JSON',
  'Math',
  'Intl',
  'Atomics',
  'WebAssembly',
  'Iterator',
  'Map',
  'Set',
  'WeakMap',
  'WeakSet',
  'WeakRef',
  'FinalizationRegistry',
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float16Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'Error',
  'AggregateError',
  'EvalError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'TypeError',
  'URIError',
  'SuppressedError',
  'DisposableStack',
  'AsyncDisposableStack',
  Symbol.toStringTag,
  // Web APIs
  'Request',
  'Response',
  'Headers',
  'FormData',
  'Blob',
  'File',
  'URL',
  'URLSearchParams',
  'URLPattern',
  'AbortController',
  'AbortSignal',
  'Event',
  'EventTarget',
  'CustomEvent',
  'DOMException',
  'TextEncoder',
  'TextDecoder',
  'TextEncoderStream',
  'TextDecoderStream',
  'CompressionStream',
  'DecompressionStream',
  'ReadableStream',
  'ReadableStreamDefaultReader',
  'ReadableStreamBYOBReader',
  'ReadableStreamBYOBRequest',
  'ReadableByteStreamController',
  'ReadableStreamDefaultController',
  'WritableStream',
  'WritableStreamDefaultController',
  'WritableStreamDefaultWriter',
  'TransformStream',
  'TransformStreamDefaultController',
  'ByteLengthQueuingStrategy',
  'CountQueuingStrategy',
  'atob',
  'btoa',
  'crypto',
  'Crypto',
  'CryptoKey',
  'SubtleCrypto',
  'structuredClone',
  'queueMicrotask',
  // In-realm channels only: nothing here can make a port that reaches another thread.
  'MessageChannel',
  'MessagePort',
  'MessageEvent',
  // Not Web-standard: Node's Request/Response (undici) and the HTTP bridge look `Buffer` up as a global
  // at call time (Buffer.byteLength, Buffer.concat). It is frozen with the other intrinsics.
  'Buffer',
]);

/** Globals replaced by plain objects (see the functions below); installed after the walk. */
const REPLACED = [
  'self',
  'addEventListener',
  'removeEventListener',
  'scheduler',
  'console',
  'performance',
  'navigator',
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
];

/** Globals a function may reassign (instrumented fetch, its own logger); host code never reads them. */
const REASSIGNABLE = new Set(['fetch', 'console']);

type Fn = (...args: unknown[]) => unknown;
const { defineProperty, getOwnPropertyDescriptor, getPrototypeOf, freeze } = Object;
const { apply, ownKeys } = Reflect;

/** V8 call site methods that return strings, numbers and booleans: never `this` or the function. */
const CALL_SITE_METHODS = [
  'getTypeName',
  'getFunctionName',
  'getMethodName',
  'getFileName',
  'getLineNumber',
  'getColumnNumber',
  'getEvalOrigin',
  'isToplevel',
  'isEval',
  'isNative',
  'isConstructor',
  'isAsync',
  'isPromiseAll',
  'getPromiseIndex',
  'getScriptNameOrSourceURL',
  'getScriptHash',
  'getEnclosingColumnNumber',
  'getEnclosingLineNumber',
  'getPosition',
  'toString',
];

/**
 * Error.prepareStackTrace as an accessor: a function's formatter is handed call sites whose getThis()
 * and getFunction() answer undefined, since the frames may be host frames.
 */
function guardPrepareStackTrace(): void {
  const sites = new WeakMap<object, Record<string, Fn>>();
  const proto: Record<string, Fn> = { getThis: () => undefined, getFunction: () => undefined };
  for (const name of CALL_SITE_METHODS)
    proto[name] = function (this: object) {
      const site = sites.get(this);
      return site && typeof site[name] === 'function' ? apply(site[name], site, []) : undefined;
    };
  freeze(proto);
  const wrapped = new WeakMap<Fn, Fn>();
  let current: unknown;
  let wrapper: Fn | undefined;
  defineProperty(Error, 'prepareStackTrace', {
    configurable: false,
    enumerable: false,
    get: () => wrapper ?? current,
    set(value: unknown) {
      const original = typeof value === 'function' ? (wrapped.get(value as Fn) ?? value) : value;
      current = original;
      wrapper = undefined;
      if (typeof original !== 'function') return;
      wrapper = (error: unknown, trace: unknown) => {
        const safe = Array.isArray(trace)
          ? trace.map((site: Record<string, Fn>) => {
              const s = Object.create(proto) as object;
              sites.set(s, site);
              return s;
            })
          : [];
        return apply(original as Fn, Error, [error, safe]);
      };
      wrapped.set(wrapper, original as Fn);
    },
  });
}

/** Names whose inherited value code commonly shadows by assignment (`this.name = …` in an Error subclass). */
const OVERRIDABLE = new Set<string | symbol>(['toString', 'toLocaleString', 'valueOf', 'name', 'message']);

/**
 * Prototypes whose `constructor` stays read-only: species lookups (`array.map`, `promise.then`) go
 * through it, so a replaced one would be handed what host code maps or awaits. Elsewhere `constructor`
 * stays writable (not configurable): Node's streams and ES5-style subclasses assign it, and
 * util.inspect names objects by it, so it cannot become an accessor.
 */
function speciesPrototypes(): Set<unknown> {
  const typed = getPrototypeOf(Uint8Array) as { prototype: unknown };
  return new Set([
    Object.prototype,
    Array.prototype,
    Promise.prototype,
    RegExp.prototype,
    ArrayBuffer.prototype,
    SharedArrayBuffer.prototype,
    typed.prototype,
    ...[Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array]
      .concat([Float32Array, Float64Array, BigInt64Array, BigUint64Array] as never[])
      .map((t) => t.prototype),
  ]);
}

/**
 * Freezes `root` and everything reachable from it through own properties (accessor functions too)
 * and prototypes. On a frozen prototype, assigning an inherited name (`err.name = 'X'`) would throw:
 * OVERRIDABLE data properties of non-function objects (all of Object.prototype's but constructor)
 * become accessors whose setter defines the property on the object assigned to, as an ordinary
 * assignment would.
 */
function deepFreeze(root: unknown, seen: Set<object>, species: Set<unknown>): void {
  const stack: unknown[] = [root];
  while (stack.length) {
    const o = stack.pop();
    if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o)) continue;
    seen.add(o);
    stack.push(getPrototypeOf(o));
    const tame = typeof o !== 'function' || o === Function.prototype;
    for (const key of ownKeys(o)) {
      const d = getOwnPropertyDescriptor(o, key);
      if (!d) continue;
      if (!('value' in d)) {
        stack.push(d.get, d.set);
        if (d.configurable) defineProperty(o, key, { configurable: false });
        continue;
      }
      stack.push(d.value);
      if (!d.configurable && !d.writable) continue;
      if (key === 'constructor' && !species.has(o)) defineProperty(o, key, { configurable: false });
      else if (
        tame &&
        d.writable &&
        (o === Object.prototype || OVERRIDABLE.has(key)) &&
        key !== 'constructor'
      )
        overridable(o, key, d.value, d.enumerable ?? false);
      else defineProperty(o, key, { writable: false, configurable: false });
    }
    Object.preventExtensions(o);
  }
}

function overridable(holder: object, key: string | symbol, value: unknown, enumerable: boolean): void {
  defineProperty(holder, key, {
    enumerable,
    configurable: false,
    get: () => value,
    set(this: unknown, v: unknown) {
      if (this === holder) throw new TypeError(`Cannot assign to read only property '${String(key)}'`);
      defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
    },
  });
}

/** Intrinsics no global names: iterator, generator and async function prototypes. */
function hiddenIntrinsics(): unknown[] {
  const iter = (x: object) => getPrototypeOf(x);
  return [
    iter([][Symbol.iterator]()),
    iter(new Map().entries()),
    iter(new Set().values()),
    iter(''[Symbol.iterator]()),
    iter(/a/[Symbol.matchAll]('')),
    // Iterator helpers (Node ≥ 22).
    iter((([] as unknown[]).values() as unknown as { map?: (f: Fn) => object }).map?.((x) => x) ?? {}),
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf(async () => {}),
    iter((new ReadableStream() as unknown as { values(): object }).values()),
    iter(new Headers().entries()),
    iter(new URLSearchParams().entries()),
    iter(new FormData().entries()),
  ];
}

/**
 * Leaves only the allow-listed globals, installs `fetchImpl` as fetch, and freezes the intrinsics.
 * Called once, before the bundle loads; the caller keeps its own references to what it needs first.
 */
export function hardenGlobals(fetchImpl: typeof fetch): void {
  const g = globalThis as unknown as Record<string | symbol, unknown>;
  // 1. Build the replacements from the host's objects while they are still there.
  const timers = guestTimers();
  const replacements: Record<string, unknown> = {
    self: globalThis,
    console: guestConsole(console),
    performance: guestPerformance(performance),
    navigator: guestNavigator(g.navigator as Navigator | undefined),
    scheduler: guestScheduler(timers),
    ...guestEventListeners(),
    ...timers,
  };
  // 2. Remove every own key of the global (and of its prototypes but Object.prototype) that is not on
  // the allow-list. Kept ones become data properties: lazy getters resolved, host reads made stable.
  const keep = new Map<string | symbol, unknown>();
  for (let o: object | null = globalThis; o && o !== Object.prototype; o = getPrototypeOf(o)) {
    for (const key of ownKeys(o)) {
      const allowed = o === globalThis ? GUEST_GLOBALS.has(key) : key === 'constructor';
      if (allowed) {
        if (o === globalThis && key !== 'globalThis') keep.set(key, g[key]);
        continue;
      }
      if (Reflect.deleteProperty(o, key)) continue;
      // Non-configurable (undici's dispatcher symbols): emptied and made read-only instead.
      const d = getOwnPropertyDescriptor(o, key);
      if (d && 'value' in d && d.writable) defineProperty(o, key, { value: undefined, writable: false });
    }
  }
  // 3. Install fetch and the replacements; pin the intrinsics the host code looks up at call time.
  keep.set('fetch', fetchImpl);
  for (const name of REPLACED) keep.set(name, replacements[name]);
  guardPrepareStackTrace();
  for (const [key, value] of keep) {
    const d = getOwnPropertyDescriptor(globalThis, key);
    if (d && !d.configurable) continue;
    const open = REASSIGNABLE.has(key as string);
    defineProperty(globalThis, key, { value, writable: open, configurable: open, enumerable: false });
  }
  // 4. Freeze what the allowed globals reach. Error stays extensible in one place: V8 reads
  // Error.stackTraceLimit as a data property (and Node's internals write it).
  // console stays open: a function may patch its own logger's methods.
  const seen = new Set<object>([globalThis, Error, replacements.console as object]);
  const species = speciesPrototypes();
  for (const key of ownKeys(Error)) {
    if (key === 'stackTraceLimit' || key === 'prepareStackTrace') continue;
    const d = getOwnPropertyDescriptor(Error, key);
    if (d && 'value' in d) defineProperty(Error, key, { writable: false, configurable: false });
    deepFreeze(d && ('value' in d ? d.value : d.get), seen, species);
  }
  Object.preventExtensions(Error);
  for (const root of [
    getPrototypeOf(Error),
    ...keep.values(),
    ...hiddenIntrinsics(),
    getPrototypeOf(globalThis),
  ])
    deepFreeze(root, seen, species);
}
