/**
 * The globals a function sees: the Web-standard ones (fetch, Request, Response, Headers, URL,
 * streams, TextEncoder/Decoder, crypto, structuredClone, timers, console, WebAssembly) and nothing of
 * the host: no process (and so no process.binding or getBuiltinModule), no require, no channels to
 * other threads, no network except the guest fetch. Buffer, global and setImmediate stay: Node's own
 * fetch (undici) looks them up as globals, and they reach nothing of the host. This is a seat-belt
 * inside the OS sandbox, not the boundary itself.
 */

/** Globals that reach the host or other threads, removed before the bundle loads. */
const HOST_GLOBALS = [
  'process',
  'require',
  'module',
  'exports',
  '__filename',
  '__dirname',
  'BroadcastChannel',
  'WebSocket',
  'EventSource',
  'localStorage',
  'sessionStorage',
];

/** Removes the host's globals and installs `fetch`; the caller keeps its own references first. */
export function hardenGlobals(fetchImpl: typeof fetch): void {
  const g = globalThis as unknown as Record<string, unknown>;
  for (const name of HOST_GLOBALS) {
    try {
      delete g[name];
    } catch {}
    if (name in g)
      Object.defineProperty(globalThis, name, { value: undefined, configurable: false, writable: false });
  }
  // undici keeps its connection pool under a global symbol; a function must not find it. Some Node
  // versions define it non-configurable, but writable.
  const dispatcher = Symbol.for('undici.globalDispatcher.1');
  try {
    if (!Reflect.deleteProperty(globalThis, dispatcher)) Reflect.set(globalThis, dispatcher, undefined);
  } catch {}
  Object.defineProperty(globalThis, 'fetch', {
    value: fetchImpl,
    writable: true,
    configurable: true,
    enumerable: true,
  });
}
