/**
 * Control messages between the supervisor and a sandbox process (on its control channel,
 * control.ts: start, stop, ready, limits, exits), and between the sandbox process and its instance threads.
 * Requests, binding calls and logs do not come this way: each instance has its own channel to the
 * supervisor (channel.ts). Shared by both sides, so it holds types only.
 */
import type { BindingKindName } from '../resources/binding-kinds.js';

/** What an instance needs to start: the bundle to load, its env and bindings. */
export interface InstanceSpec {
  /** Unique per instance on this node (an opaque name; it grants nothing). */
  id: string;
  bundlePath: string;
  /** Plain env vars and secret values, passed to the handler as `env`. */
  env: Record<string, string>;
  /** Typed vars (spec.vars): JSON values, given to each instance as its own deep copy. */
  vars?: Record<string, unknown>;
  /** Bound resources by env name and kind; each becomes a binding object whose calls go to the supervisor. */
  bindings: Record<string, BindingKindName>;
  /** The function has static assets: env.__STATIC_CONTENT, and env[binding] when it names one. */
  assets?: { binding?: string };
  /** V8 heap cap for the instance thread. */
  memoryMiB: number;
}

/** What the sandbox process needs beyond InstanceSpec: the limits it enforces from outside the worker. */
export interface WorkerSpec extends InstanceSpec {
  /** The sandbox process's fd of the instance's channel (a socketpair end the supervisor made). */
  channelFd: number;
  /** CPU (event-loop busy) time one request may use before the instance is stopped. */
  cpuMs: number;
  /** How long loading the module (its global scope) may take. */
  startupLimitMs: number;
  /** The egress proxy's socket, the only way out of the sandbox. */
  egressSocket: string;
}

/** Supervisor → sandbox process. */
export type ToSandbox =
  | { type: 'start'; instance: WorkerSpec }
  | { type: 'stop'; id: string }
  /** Keep this many workers started but unassigned, so a new instance skips the worker's boot. */
  | { type: 'warm'; count: number; egressSocket: string; memoryMiB: number }
  /** How much memory all instances of the process may use together (the in-process fallback when there is no cgroup). */
  | { type: 'budget'; memoryBytes: number }
  /** Are you there? The process answers with a pong of the same seq (runtime/liveness.ts). */
  | { type: 'ping'; seq: number };

/** Why the sandbox process stopped an instance itself. */
export type LimitCode = 'ERR_CPU_LIMIT' | 'ERR_MEMORY_LIMIT';

/** One captured console call. */
export interface LogRecord {
  level: 'debug' | 'info' | 'log' | 'warn' | 'error';
  message: string;
  requestId?: string;
  time: string;
}

/** Sandbox process → supervisor. */
export type FromSandbox =
  | { type: 'hello'; pid: number; nodeVersion: string }
  | { type: 'ready'; id: string; startupMs: number }
  | { type: 'failed'; id: string; message: string }
  | { type: 'exited'; id: string; code: number; message?: string }
  /** Sent before the process stops an instance for a limit, so in-flight requests get that error. */
  | { type: 'limit'; id: string; code: LimitCode; message: string }
  /** A console record of an instance (the host relays at most 1,000 a second per instance). */
  | { type: 'log'; id: string; record: LogRecord }
  /** The answer to a ping. */
  | { type: 'pong'; seq: number };

/** One call of a binding object. */
export interface BindingCall {
  binding: string;
  op: string;
  args: unknown[];
}

/** Instance thread → sandbox process. */
export type FromInstance =
  /** The worker is up and is about to evaluate the module: the start-up limit counts from here. */
  | { type: 'loading' }
  | { type: 'ready'; startupMs: number }
  | { type: 'failed'; message: string }
  | { type: 'log'; record: LogRecord };

/** Sandbox process → instance thread. */
export type ToInstance =
  /** A pre-started worker becomes this instance. */
  { type: 'assign'; spec: WorkerSpec };

/** The header a guest fetch() uses to tell the egress proxy where it wants to go. */
export const EGRESS_URL_HEADER = 'kylix-egress-url';
/** The response header the egress proxy sets when it refused or failed a connection. */
export const EGRESS_ERROR_HEADER = 'kylix-egress-error';

/**
 * Layout of the Int32Array an instance shares with its sandbox process, so the process can account
 * CPU per request even while the instance's thread is stuck: [0] requests finished, [1..] one slot per
 * in-flight request holding its sequence number (0 = free).
 */
export const USAGE_SLOTS = 512;

/** The longest delay a queue message may be sent or retried with: 12 hours, as on Workers. */
export const MAX_DELAY_SECONDS = 43_200;

/**
 * The most of a queue() or scheduled() handler's error an event's answer carries (the supervisor
 * cuts what a hostile instance sends at the same length): it goes to the function's log.
 */
export const MAX_ERROR_TEXT = 8 * 1024;

/** Loading a module may take startupLimitMs of CPU, and this many times that in wall time. */
export const STARTUP_WALL_FACTOR = 10;

/** The error for a module whose evaluation used more CPU than the start-up limit. */
export function startupTooSlow(limitMs: number): string {
  return `loading the module took more than ${limitMs} ms of CPU. Move slow start-up work out of the module's global scope (into fetch(), lazily).`;
}
