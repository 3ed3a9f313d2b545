/**
 * One function instance, in a worker thread of a sandbox process: hardens the realm (see
 * guest-realm.ts), loads the bundle, and serves the requests the gateway frames on the instance's
 * channel (a socket fd the supervisor made, see channel.ts and serve.ts). console output is captured and tagged with the request id of the
 * invocation that wrote it; each request is entered in the shared usage array for CPU accounting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as nodeModule from 'node:module';
import { connect, createServer, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { assetBindings } from './assets-binding.js';
import { buildEnv } from './bindings.js';
import { creditFrame, F, FrameReader, FrameWriter, headFrame } from './channel.js';
import { guestFetch } from './guest-fetch.js';
import { hardenGlobals } from './guest-realm.js';
import type { Handler } from './handler.js';
import { refuseUntrusted } from './loader-hooks.js';
import {
  type FromInstance,
  type LogRecord,
  startupTooSlow,
  type ToInstance,
  USAGE_SLOTS,
  type WorkerSpec,
} from './protocol.js';
import { InstanceServer, type ServeHooks } from './serve.js';
import { installWebObjects } from './web-objects.js';
import { installCaches } from './workers-compat/caches.js';
import { installCryptoExtras } from './workers-compat/crypto-extras.js';
import { handlerOf } from './workers-compat/module-shapes.js';
import { offerWorkersState } from './workers-compat/workers-module.js';

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

function post(message: FromInstance): void {
  parentPort?.postMessage(message);
}

function capture(level: LogRecord['level']) {
  return (...args: unknown[]) => {
    // To the parent thread, synchronously: a thread stuck in a loop still gets its lines out.
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

parentPort?.on('message', (m: ToInstance) => {
  if (m.type === 'assign') assigned(m.spec);
});

/**
 * Imports the bundle and finds its handler in whichever shape Workers accepts (module syntax, a
 * WorkerEntrypoint class, Service Worker listeners: see workers-compat/module-shapes.ts).
 */
async function load(env: Record<string, unknown>): Promise<{ handler: Handler }> {
  // The bundle's compat modules (cloudflare:workers, node:async_hooks) take env and the rest as it loads.
  const withdraw = offerWorkersState(env, capture('error'));
  try {
    const mod = (await import(pathToFileURL(spec.bundlePath).href)) as { default?: unknown };
    // Wrapped: an async function's result adopts a thenable, and a handler may be one (itty-router's
    // router answers every property, `then` included); Workers never awaits the default export.
    return { handler: handlerOf(mod, env) };
  } finally {
    withdraw();
  }
}

/** The hooks a server needs, writing to `write`. */
function serveHooks(write: (bytes: Uint8Array) => void): ServeHooks {
  return {
    write,
    run: (requestId, fn) => invocation.run(requestId, fn),
    logError: capture('error'),
    begin,
    end,
  };
}

/** Where binding calls go: the instance's server, once the channel is open. */
interface RpcTarget {
  server?: InstanceServer;
}

/** The function's env: its vars and bindings, whose calls go out on the channel once it is open. */
function makeEnv(calls: RpcTarget): Record<string, unknown> {
  const rpc = (binding: string, op: string, args: unknown[]) => {
    if (!calls.server) return Promise.reject(new Error('Bindings cannot be called while the module loads.'));
    return calls.server.rpc(binding, op, args);
  };
  // The Workers `caches` global goes out on the same channel as the bindings.
  installCaches(rpc);
  const env = buildEnv(rpc, spec.env, spec.bindings ?? {}, spec.vars);
  if (spec.assets) Object.assign(env, assetBindings(rpc, spec.assets.binding));
  return env;
}

/**
 * Opens the channel on the fd the supervisor gave this instance and serves on it. Frames go out
 * through a FrameWriter: a lone frame at once, the answers to requests that arrived together in
 * one write.
 */
function serveChannel(handler: Handler, env: Record<string, unknown>, calls: RpcTarget, fd: number): void {
  const socket = new Socket({ fd, readable: true, writable: true });
  const writer = new FrameWriter(socket);
  const server = new InstanceServer(
    handler,
    env,
    serveHooks((bytes) => writer.write(bytes)),
  );
  calls.server = server;
  const reader = new FrameReader((type, stream, payload) => server.onFrame(type, stream, payload));
  socket.on('data', (chunk: Uint8Array) => reader.push(chunk));
  // The supervisor closed the channel: this instance has nobody left to serve.
  socket.on('close', () => hostProcess.exit(0));
  socket.on('error', () => undefined);
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

/** How long the socket warm-up may take before the worker goes on without it. */
const WARM_SOCKET_MS = 1000;

/**
 * One frame written and read back, through a FrameWriter and a FrameReader, on a connected Unix
 * socket in the sandbox's socket folder (listened on, connected to, closed and so removed here,
 * before any function code runs in this thread). Resolves when done, failed, or after
 * WARM_SOCKET_MS: a warm-up never stops a worker from starting.
 */
function warmSocket(socketDir: string): Promise<void> {
  return new Promise((resolve) => {
    const server = createServer((peer) => {
      peer.on('data', (chunk) => peer.end(chunk));
      peer.on('error', () => undefined);
    });
    let client: Socket | undefined;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client?.destroy();
      server.close();
      resolve();
    };
    const timer = setTimeout(done, WARM_SOCKET_MS);
    server.on('error', done);
    // Short: a Unix socket path has at most 107 bytes, and the folder's path is the caller's.
    server.listen(join(socketDir, `w${threadId}.sock`), () => {
      const socket = connect(server.address() as string);
      client = socket;
      const reader = new FrameReader(done);
      socket.on('data', (chunk: Uint8Array) => reader.push(chunk));
      socket.on('close', () => undefined);
      socket.on('error', done);
      socket.on('connect', () => new FrameWriter(socket).write(creditFrame(1, 1)));
    });
  });
}

/**
 * Runs what a cold start runs, once, before the worker is assigned: a module import through the
 * loader hooks, frames written and read on a real socket as the channel's will be, and one request
 * through an in-memory server (the whole serving path but the socket). V8 compiles functions on
 * their first call, and Node loads and compiles its stream, pipe and write code on the first socket
 * a thread uses; on the bench's machine that was 0.8 ms to open the channel and 0.9 ms for the
 * first response's write, in every cold start. The channel's own fd is only known at the
 * assignment, so the warm-up uses a socket pair of its own (see warmSocket).
 */
async function prewarm(socketDir: string): Promise<void> {
  threadCpuMs();
  await warmSocket(socketDir);
  const mod = (await import(new URL('./prewarm-module.js', import.meta.url).href)) as { default: Handler };
  let answered: () => void = () => {};
  const done = new Promise<void>((resolve) => (answered = resolve));
  const replies = new FrameReader((type) => {
    if (type === F.RESPONSE || type === F.END || type === F.THREW || type === F.RESET) answered();
  });
  const server = new InstanceServer(
    mod.default,
    {},
    {
      ...serveHooks((b) => replies.push(b)),
      begin: () => 0,
      end: () => {},
    },
  );
  const request = headFrame(F.REQUEST, 1, {
    m: 'GET',
    u: '/prewarm',
    h: ['host', 'prewarm'],
    host: 'prewarm',
    id: '',
  });
  new FrameReader((type, stream, payload) => server.onFrame(type, stream, payload)).push(request);
  await done;
}

async function main(): Promise<void> {
  // 1. Only this file may import: the bundle and anything it evaluates may not.
  installImportHooks();
  // 2. Strip the host's globals, install the fast Request/Response, route fetch() through the egress proxy.
  installWebObjects();
  installCryptoExtras();
  hardenGlobals(
    guestFetch(data.spec?.egressSocket ?? data.prestart?.egressSocket ?? '', (reason) =>
      capture('warn')(`fetch() was refused by the egress proxy: ${reason}`),
    ),
  );
  // 3. A pre-started worker warms up, then waits here until it is given an instance.
  if (data.prestart) await prewarm(dirname(data.prestart.egressSocket)).catch(() => undefined);
  spec = await assignment;
  if (data.prestart) started = performance.now();
  // 4. Load the function.
  post({ type: 'loading' });
  const cpuBefore = threadCpuMs();
  const calls: RpcTarget = {};
  const env = makeEnv(calls);
  let handler: Handler;
  try {
    ({ handler } = await load(env));
  } catch (err) {
    // Its stack goes to the function's log and, with the failure, to the supervisor, which maps it
    // to the user's source (never here, inside the sandbox).
    capture('error')('Uncaught exception while loading the module:', err);
    const stack =
      err instanceof Error && typeof err.stack === 'string' ? err.stack.slice(0, 4096) : undefined;
    post({
      type: 'failed',
      message: stack ?? (err instanceof Error ? `${err.name}: ${err.message}` : String(err)),
    });
    return;
  }
  // The start-up limit is CPU time, so a busy host (many deploys at once) does not fail a module.
  const loadCpuMs = threadCpuMs() - cpuBefore;
  if (loadCpuMs > spec.startupLimitMs) {
    post({ type: 'failed', message: startupTooSlow(spec.startupLimitMs) });
    return;
  }
  // 5. Serve on the channel the supervisor gave this instance.
  try {
    serveChannel(handler, env, calls, spec.channelFd);
  } catch (err) {
    post({ type: 'failed', message: `cannot open the instance's channel: ${(err as Error).message}` });
    return;
  }
  post({ type: 'ready', startupMs: Math.round(performance.now() - started) });
}

main().catch((err: unknown) =>
  post({ type: 'failed', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
);
