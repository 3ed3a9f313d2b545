/**
 * The control messages a sandbox process sends about its instances (ready, failed, limit, log,
 * exited), and the supervisor's record of those instances that they update (revision-process.ts
 * owns it). The process is untrusted: a message about an instance that is not its own, of an
 * unknown shape, or one whose handling throws, ends it.
 */
import { KylixError } from '../errors.js';
import type { FromSandbox, LogRecord } from '../sandbox/protocol.js';
import type { InstanceChannel, InstanceHooks } from './instance-channel.js';
import type { LogLimiter } from './log-limiter.js';
import type { SandboxEvents, SandboxInstance } from './sandbox.js';

/** The longest text from a sandbox process (a failure, a limit, an exit) the supervisor keeps. */
export const MAX_REASON_CHARS = 8 * 1024;

/** A running instance: its channel, its hooks and its log's limiter. */
export interface RunningInstance {
  channel: InstanceChannel;
  hooks: InstanceHooks;
  logs: LogLimiter;
}

/** A starting instance: the same, and the promise of startInstance() waiting for it. */
export interface Waiter extends RunningInstance {
  resolve(instance: SandboxInstance): void;
  reject(err: Error): void;
}

/** The instances of one sandbox process, as the supervisor knows them. */
export interface ProcessInstances {
  readonly starting: Map<string, Waiter>;
  /** Instances asked to stop → what to call once the process reports them stopped. */
  readonly stopping: Map<string, () => void>;
  /** Running instance id → its channel and hooks. */
  readonly running: Map<string, RunningInstance>;
  /** Memory each running or starting instance needs (its heap cap plus overhead), by id. */
  readonly memory: Map<string, number>;
}

/**
 * A control message. The process is untrusted, and an exception thrown while handling what it
 * sent would be the supervisor's (uncaught, it ends the node and every tenant on it): whatever
 * fails here ends the process instead (`kill`).
 */
export function onControlMessage(
  m: FromSandbox,
  instances: ProcessInstances,
  events: SandboxEvents,
  kill: (reason: string) => void,
): void {
  try {
    handle(m, instances, events, kill);
  } catch {
    kill('a control message the supervisor could not handle');
  }
}

/** The instance starting as `id`, taken from `starting`; none (and the process ended) if it holds none. */
function takeStarting<T>(
  starting: Map<string, T>,
  id: string,
  type: string,
  kill: (reason: string) => void,
): T | undefined {
  const w = starting.get(id);
  if (!w) kill(`a ${type} message for an instance it does not hold`);
  else starting.delete(id);
  return w;
}

/**
 * One control message; one about an instance this process does not hold, or of an unknown shape,
 * ends it. Its fields are read by type only, never converted (String() of an object whose
 * toString is not a function throws), and texts are cut to MAX_REASON_CHARS: they become Function
 * status, Events and log lines, and a 100 MB error message from tenant code must not.
 */
function handle(
  m: FromSandbox,
  instances: ProcessInstances,
  events: SandboxEvents,
  kill: (reason: string) => void,
): void {
  const { starting, stopping, running, memory } = instances;
  if (typeof m !== 'object' || m === null) {
    kill('a malformed control message');
    return;
  }
  const id = (m as { id?: unknown }).id;
  const known = typeof id === 'string' && (starting.has(id) || running.has(id));
  switch (m.type) {
    case 'hello':
      return;
    case 'ready': {
      const w = takeStarting(starting, m.id, 'ready', kill);
      if (!w) return;
      running.set(m.id, { channel: w.channel, hooks: w.hooks, logs: w.logs });
      const startupMs = typeof m.startupMs === 'number' && Number.isFinite(m.startupMs) ? m.startupMs : 0;
      w.resolve({ id: m.id, channel: w.channel, startupMs });
      return;
    }
    case 'failed': {
      const w = takeStarting(starting, m.id, 'failed', kill);
      if (!w) return;
      memory.delete(m.id);
      w.channel.close();
      // Stopped while it started: the host answers the stop with this failure.
      stopping.get(m.id)?.();
      stopping.delete(m.id);
      w.reject(new KylixError('ERR_NOT_READY', `The function failed to start: ${reason(m.message)}`));
      return;
    }
    case 'limit': {
      const r = running.get(m.id);
      if (!r) {
        if (!known) kill('a limit message for an instance it does not hold');
        return;
      }
      if (m.code !== 'ERR_CPU_LIMIT' && m.code !== 'ERR_MEMORY_LIMIT') {
        kill('an unknown limit');
        return;
      }
      const message = reason(m.message);
      r.channel.setFate({ code: m.code, message });
      r.hooks.log(stoppedRecord(message));
      return;
    }
    case 'log': {
      const target = starting.get(m.id) ?? running.get(m.id);
      if (!target) {
        if (!known) kill('a log message for an instance it does not hold');
        return;
      }
      const r = m.record as Partial<LogRecord> | undefined;
      if (typeof r?.message !== 'string') {
        kill('a malformed log record');
        return;
      }
      target.logs.log({
        level:
          r.level === 'warn' || r.level === 'error' || r.level === 'debug' || r.level === 'info'
            ? r.level
            : 'log',
        message: r.message,
        requestId: typeof r.requestId === 'string' ? r.requestId : undefined,
        time: typeof r.time === 'string' ? r.time : new Date().toISOString(),
      });
      return;
    }
    case 'exited': {
      // An instance that exits before it said ready or failed did not start: its start fails now
      // (the host says failed first; without this its memory entry was dropped while its start
      // waited for the time limit).
      const w = typeof m.id === 'string' ? starting.get(m.id) : undefined;
      if (w) {
        starting.delete(m.id);
        memory.delete(m.id);
        w.channel.close();
        w.logs.flush();
        stopping.get(m.id)?.();
        stopping.delete(m.id);
        w.reject(new KylixError('ERR_NOT_READY', `The function failed to start: ${exitReason(m)}`));
        return;
      }
      const r = running.get(m.id);
      running.delete(m.id);
      memory.delete(m.id);
      r?.channel.close();
      r?.logs.flush();
      const stopped = stopping.get(m.id);
      stopping.delete(m.id);
      if (stopped) stopped();
      else if (r) events.exit(m.id, exitReason(m));
      return;
    }
    default: {
      kill('an unknown control message');
      return;
    }
  }
}

/** Why an instance exited, as its process said: its message, or its exit code. */
function exitReason(m: { message?: unknown; code?: unknown }): string {
  return typeof m.message === 'string'
    ? reason(m.message)
    : `exit code ${typeof m.code === 'number' ? m.code : '?'}`;
}

/** A text a sandbox process sent, cut to MAX_REASON_CHARS; anything but a string says so. */
function reason(value: unknown): string {
  if (typeof value !== 'string') return '(no reason given)';
  if (value.length <= MAX_REASON_CHARS) return value;
  return `${value.slice(0, MAX_REASON_CHARS)}… (${value.length - MAX_REASON_CHARS} more characters)`;
}

/** The function's log line for an instance the sandbox stopped. */
export function stoppedRecord(reason: string): LogRecord {
  return { level: 'error', message: `Instance stopped: ${reason}.`, time: new Date().toISOString() };
}
