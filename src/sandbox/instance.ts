/**
 * One function instance, in a worker thread of a sandbox process: hardens the realm (see
 * guest-realm.ts), loads the bundle, serves HTTP on its Unix socket and calls the module's
 * fetch(request, env, ctx). console output is captured and tagged with the request id of the
 * invocation that wrote it; each request is entered in the shared usage array for CPU accounting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import * as nodeModule from 'node:module';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { buildEnv, type Rpc } from './bindings.js';
import { messageBatch, scheduledEvent, type WireDelivery } from './events.js';
import { guestFetch } from './guest-fetch.js';
import { hardenGlobals } from './guest-realm.js';
import { toRequest, writeResponse } from './http-bridge.js';
import { refuseUntrusted } from './loader-hooks.js';
import {
  ERROR_HEADER,
  EVENT_HEADER,
  type FromInstance,
  type LogRecord,
  REQUEST_ID_HEADER,
  startupTooSlow,
  type ToInstance,
  USAGE_SLOTS,
  type WorkerSpec,
} from './protocol.js';
import { installWebObjects, isResponse } from './web-objects.js';

const data = workerData as { spec?: WorkerSpec; usage: Int32Array; prestart?: { egressSocket: string } };
const { usage } = data;
/** The instance this worker is; a pre-started worker learns it from an 'assign' message. */
let spec = data.spec as WorkerSpec;
let assigned: (s: WorkerSpec) => void = () => {};
const assignment = data.spec
  ? Promise.resolve(data.spec)
  : new Promise<WorkerSpec>((resolve) => (assigned = resolve));
let started = performance.now();
const invocation = new AsyncLocalStorage<string>();
// Kept before the realm is hardened: the function never sees these.
const hostProcess = process;
const HostBuffer = Buffer;

function post(message: FromInstance): void {
  parentPort?.postMessage(message);
}

function capture(level: LogRecord['level']) {
  return (...args: unknown[]) => {
    post({
      type: 'log',
      record: {
        level,
        message: format(...args),
        requestId: invocation.getStore(),
        time: new Date().toISOString(),
      },
    });
  };
}

// console.* goes to the function's log, never to the platform's stdout.
for (const level of ['debug', 'info', 'log', 'warn', 'error'] as const) {
  (console as unknown as Record<string, unknown>)[level] = capture(level);
}
console.trace = capture('debug');

hostProcess.on('unhandledRejection', (reason) => {
  capture('error')('Unhandled promise rejection:', reason);
});

let sequence = 0;
/** Enters a request in the shared usage array; returns its slot (0 when all are taken). */
function begin(): number {
  sequence = (sequence % 0x7fffffff) + 1;
  for (let i = 0; i < USAGE_SLOTS; i++) {
    const slot = ((sequence + i) % USAGE_SLOTS) + 1;
    if (Atomics.compareExchange(usage, slot, 0, sequence) === 0) return slot;
  }
  return 0;
}
function end(slot: number): void {
  if (slot) Atomics.store(usage, slot, 0);
  Atomics.add(usage, 0, 1);
}

/** The Workers-style handler object a module exports by default. */
interface Handler {
  fetch?(request: Request, env: Record<string, unknown>, ctx: ExecutionContext): Response | Promise<Response>;
  queue?(batch: unknown, env: Record<string, unknown>, ctx: ExecutionContext): unknown;
  scheduled?(event: unknown, env: Record<string, unknown>, ctx: ExecutionContext): unknown;
}

/** Binding calls waiting for the supervisor's answer, by call id. */
const calls = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
let nextCallId = 0;
parentPort?.on('message', (m: ToInstance) => {
  if (m.type === 'assign') return assigned(m.spec);
  if (m.type !== 'rpc-result') return;
  const waiting = calls.get(m.callId);
  calls.delete(m.callId);
  if (m.ok) waiting?.resolve(m.value);
  else waiting?.reject(new Error(m.error ?? 'the binding call failed'));
});

/** One binding call: checked and run by the supervisor, never by this thread. */
const rpc: Rpc = (binding, op, args) =>
  new Promise((resolve, reject) => {
    const callId = ++nextCallId;
    calls.set(callId, { resolve, reject });
    post({ type: 'rpc', callId, call: { binding, op, args } });
  });

/** The ctx argument: waitUntil keeps work alive after the response, as on Workers. */
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

function errorResponse(code: string, message: string): Response {
  return new Response(JSON.stringify({ code, message }), {
    status: 500,
    headers: { 'content-type': 'application/json', [ERROR_HEADER]: code },
  });
}

async function load(): Promise<Handler> {
  const mod = (await import(pathToFileURL(spec.bundlePath).href)) as { default?: Partial<Handler> };
  const handler = mod.default;
  if (
    !handler ||
    !['fetch', 'queue', 'scheduled'].some(
      (h) => typeof (handler as Record<string, unknown>)[h] === 'function',
    )
  ) {
    throw new Error(
      'The module has no default export with a fetch(request, env, ctx), queue(batch, env, ctx) or scheduled(event, env, ctx) method. Export `default { fetch(request, env, ctx) { … } }`.',
    );
  }
  return handler as Handler;
}

async function call(handler: Handler, env: Record<string, unknown>, request: Request): Promise<Response> {
  const ctx: ExecutionContext = {
    waitUntil(promise) {
      Promise.resolve(promise).catch((err) => capture('error')('waitUntil promise rejected:', err));
    },
    passThroughOnException() {},
  };
  if (!handler.fetch) return new Response('This function has no fetch() handler.\n', { status: 404 });
  try {
    const response = await handler.fetch(request, env, ctx);
    if (!isResponse(response)) {
      console.error(
        `fetch() returned ${typeof response === 'object' ? Object.prototype.toString.call(response) : typeof response}, not a Response.`,
      );
      return errorResponse('ERR_FUNCTION_THREW', 'fetch() did not return a Response');
    }
    return response;
  } catch (err) {
    console.error('Uncaught exception in fetch():', err);
    return errorResponse('ERR_FUNCTION_THREW', 'fetch() threw');
  }
}

/**
 * Runs queue(batch) or scheduled(event) for the supervisor (the gateway never forwards the event
 * header from clients) and answers with what the handler decided, after its waitUntil work.
 */
async function deliverEvent(
  handler: Handler,
  env: Record<string, unknown>,
  kind: string,
  req: IncomingMessage,
): Promise<Response> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const payload = JSON.parse(HostBuffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContext = {
    waitUntil: (p) =>
      void pending.push(
        Promise.resolve(p).catch((err) => capture('error')('waitUntil promise rejected:', err)),
      ),
    passThroughOnException() {},
  };
  if (kind === 'queue') {
    const deliveries = (payload.messages as (Omit<WireDelivery, 'body'> & { body: string })[]).map((d) => ({
      ...d,
      body: new Uint8Array(HostBuffer.from(d.body, 'base64')),
    }));
    const { batch, outcome } = messageBatch(String(payload.queue), deliveries);
    let error: unknown;
    try {
      if (!handler.queue)
        throw new Error('The function has no queue(batch, env, ctx) handler, but a queue trigger.');
      await handler.queue(batch, env, ctx);
    } catch (err) {
      error = err;
      console.error('Uncaught exception in queue():', err);
    }
    await Promise.all(pending);
    return Response.json(outcome(error));
  }
  try {
    if (!handler.scheduled)
      throw new Error('The function has no scheduled(event, env, ctx) handler, but a schedule trigger.');
    await handler.scheduled(scheduledEvent(payload as { cron: string; scheduledTime: number }), env, ctx);
    await Promise.all(pending);
    return Response.json({ ok: true });
  } catch (err) {
    console.error('Uncaught exception in scheduled():', err);
    return Response.json({
      ok: false,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  }
}

function serve(handler: Handler, env: Record<string, unknown>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const slot = begin();
    let open = true;
    const done = () => {
      if (open) end(slot);
      open = false;
    };
    const aborter = new AbortController();
    res.once('close', () => {
      // The gateway dropped the connection (its client went away, or a limit): cancel the call.
      if (!res.writableFinished) aborter.abort(new DOMException('The client disconnected.', 'AbortError'));
      done();
    });
    const requestId =
      typeof req.headers[REQUEST_ID_HEADER] === 'string' ? req.headers[REQUEST_ID_HEADER] : '';
    const event = req.headers[EVENT_HEADER];
    invocation
      .run(requestId, async () => {
        const response = event
          ? await deliverEvent(handler, env, String(event), req)
          : await call(handler, env, toRequest(req, aborter.signal));
        await writeResponse(res, response, req.method === 'HEAD');
      })
      .catch((err: unknown) => {
        capture('error')('Could not send the response:', err);
        res.destroy();
      });
  };
}

/** The HTTP server an instance serves on (and the prewarm warms up). */
function instanceServer(handler: Handler, env: Record<string, unknown>) {
  return createServer({ keepAliveTimeout: 60_000 }, serve(handler, env));
}

/**
 * CPU time this thread has used, in ms (Node ≥ 23.9; the sandbox runs Node 24). Captured before the
 * guest's globals are stripped. Falls back to wall time on an older Node.
 */
const threadCpuMs: () => number = (() => {
  const usage = (hostProcess as { threadCpuUsage?: () => { user: number; system: number } }).threadCpuUsage;
  if (!usage) return () => performance.now();
  return () => {
    const u = usage.call(hostProcess);
    return (u.user + u.system) / 1000;
  };
})();

/** Only this file may import (see loader-hooks.ts): in this thread where Node allows, else off-thread. */
function installImportHooks(): void {
  const trusted = import.meta.url;
  const inThread = (
    nodeModule as {
      registerHooks?: (hooks: {
        resolve: (s: string, c: { parentURL?: string }, next: (s: string, c: unknown) => unknown) => unknown;
      }) => unknown;
    }
  ).registerHooks;
  if (inThread) {
    inThread({
      resolve(specifier, context, next) {
        refuseUntrusted(specifier, context.parentURL, trusted);
        return next(specifier, context);
      },
    });
    return;
  }
  nodeModule.register(new URL('./loader-hooks.js', import.meta.url), { data: { trusted } });
}

/**
 * Runs what a cold start runs, once, before the worker is assigned: a module import through the
 * loader hooks, and one request through a server on a scratch socket and the whole serving path.
 * V8 compiles functions on their first call; this moves that work (about half of a cold start)
 * out of the first real request.
 */
async function prewarm(egressSocket: string): Promise<void> {
  const mod = (await import(new URL('./prewarm-module.js', import.meta.url).href)) as { default: Handler };
  const socketPath = join(dirname(egressSocket), `prewarm-${threadId}.sock`);
  // One left by a process that was killed (the folder outlives it) would make listen() fail.
  rmSync(socketPath, { force: true });
  const server = instanceServer(mod.default, {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  try {
    // A raw request: the client side of node:http would be compiled for nothing.
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection(socketPath, () =>
        socket.end('GET /prewarm HTTP/1.1\r\nHost: prewarm\r\nConnection: close\r\n\r\n'),
      );
      socket.once('error', reject);
      socket.once('close', () => resolve());
      socket.resume();
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(socketPath, { force: true });
  }
}

async function main(): Promise<void> {
  // 1. Only this file may import: the bundle and anything it evaluates may not.
  installImportHooks();
  // 2. Strip the host's globals, install the fast Request/Response, route fetch() through the egress proxy.
  installWebObjects();
  hardenGlobals(
    guestFetch(data.spec?.egressSocket ?? data.prestart?.egressSocket ?? '', (reason) =>
      capture('warn')(`fetch() was refused by the egress proxy: ${reason}`),
    ),
  );
  // 3. A pre-started worker warms up, then waits here until it is given an instance.
  if (data.prestart) await prewarm(data.prestart.egressSocket).catch(() => undefined);
  spec = await assignment;
  if (data.prestart) started = performance.now();
  // 4. Load the function.
  post({ type: 'loading' });
  const cpuBefore = threadCpuMs();
  let handler: Handler;
  try {
    handler = await load();
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    return;
  }
  // The start-up limit is CPU time, so a busy host (many deploys at once) does not fail a module.
  const loadCpuMs = threadCpuMs() - cpuBefore;
  if (loadCpuMs > spec.startupLimitMs) {
    post({ type: 'failed', message: startupTooSlow(spec.startupLimitMs) });
    return;
  }
  const env = buildEnv(rpc, spec.env, spec.bindings ?? {});
  // 5. Serve.
  const server = instanceServer(handler, env);
  server.listen(spec.socketPath, () => {
    post({ type: 'ready', startupMs: Math.round(performance.now() - started) });
  });
  server.on('error', (err) =>
    post({ type: 'failed', message: `cannot listen on ${spec.socketPath}: ${err.message}` }),
  );
}

main().catch((err: unknown) =>
  post({ type: 'failed', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
);
