/**
 * The shapes of a function module Workers accepts, turned into the one Handler the instance serves:
 *
 * 1. `export default { fetch, queue, scheduled }` (module syntax), as it is;
 * 2. `export default class extends WorkerEntrypoint { fetch(request) … }`: a new instance per call,
 *    made with (ctx, env) as Workers does;
 * 3. Service Worker syntax: no default export, listeners registered with
 *    `addEventListener('fetch' | 'scheduled', …)` while the module loaded. As on Workers, the env's
 *    vars and bindings are then globals too (`MY_KV.get(…)`).
 */
import { eventListeners } from '../guest-globals.js';
import type { ExecutionContext, Handler } from '../handler.js';

type Env = Record<string, unknown>;
type Listener = (event: unknown) => unknown;
const METHODS = ['fetch', 'queue', 'scheduled'] as const;

/** The error a module that is none of the shapes above fails to start with. */
export const NO_HANDLER =
  'The module has no default export with a fetch(request, env, ctx), queue(batch, env, ctx) or scheduled(event, env, ctx) method, and registered no addEventListener("fetch" | "scheduled") listener. Export `default { fetch(request, env, ctx) { … } }`.';

function hasMethod(o: unknown, name: string): boolean {
  return (
    (typeof o === 'object' || typeof o === 'function') && o !== null && typeof (o as Env)[name] === 'function'
  );
}

/** A WorkerEntrypoint-style class: constructed per call with (ctx, env), its methods take no env. */
function entrypointHandler(Entrypoint: new (ctx: ExecutionContext, env: Env) => Env): Handler {
  const handler: Record<string, unknown> = {};
  for (const name of METHODS) {
    if (!hasMethod(Entrypoint.prototype, name)) continue;
    handler[name] = (arg: unknown, env: Env, ctx: ExecutionContext) => {
      const instance = new Entrypoint(ctx, env);
      return (instance[name] as (a: unknown) => unknown).call(instance, arg);
    };
  }
  return handler as Handler;
}

/** fetch() over the 'fetch' listeners: the first respondWith() answers, as in a Service Worker. */
function serviceWorkerFetch(fetchListeners: readonly Listener[]): Handler['fetch'] {
  return (request, _env, ctx) => {
    let response: Promise<Response> | undefined;
    const event = {
      type: 'fetch',
      request,
      respondWith(r: Response | Promise<Response>) {
        if (response) throw new DOMException('respondWith() was already called.', 'InvalidStateError');
        response = Promise.resolve(r);
      },
      waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p),
      passThroughOnException: () => ctx.passThroughOnException(),
    };
    for (const listener of fetchListeners) listener.call(globalThis, event);
    if (!response)
      throw new Error(
        'No "fetch" listener called event.respondWith() for this request: call it synchronously in the listener.',
      );
    return response;
  };
}

/** scheduled() over the 'scheduled' listeners; their waitUntil work is awaited as the ctx's. */
function serviceWorkerScheduled(listeners: readonly Listener[]): Handler['scheduled'] {
  return async (controller, _env, ctx) => {
    const c = controller as { cron: string; scheduledTime: number; noRetry?: () => void };
    const event = {
      type: 'scheduled',
      cron: c.cron,
      scheduledTime: c.scheduledTime,
      noRetry: () => c.noRetry?.(),
      waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p),
    };
    for (const listener of listeners) await listener.call(globalThis, event);
  };
}

/** The env's entries as globals, for Service Worker code (configurable: the function may shadow them). */
function envAsGlobals(env: Env): void {
  for (const [name, value] of Object.entries(env)) {
    if (name in globalThis) continue;
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  }
}

/** The Handler of a loaded module (see the file comment); throws NO_HANDLER when it has none. */
export function handlerOf(mod: { default?: unknown }, env: Env): Handler {
  const d = mod.default;
  if (typeof d === 'function' && METHODS.some((m) => hasMethod(d.prototype, m)))
    return entrypointHandler(d as new (ctx: ExecutionContext, env: Env) => Env);
  if (METHODS.some((m) => hasMethod(d, m))) return d as Handler;
  const onFetch = eventListeners('fetch') as Listener[];
  const onScheduled = eventListeners('scheduled') as Listener[];
  if (d === undefined && (onFetch.length || onScheduled.length)) {
    envAsGlobals(env);
    const handler: Handler = {};
    if (onFetch.length) handler.fetch = serviceWorkerFetch(onFetch);
    if (onScheduled.length) handler.scheduled = serviceWorkerScheduled(onScheduled);
    return handler;
  }
  throw new Error(NO_HANDLER);
}
