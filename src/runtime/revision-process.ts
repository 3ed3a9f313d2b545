/**
 * One sandbox process: the tenant code of one function revision (so never two namespaces), started
 * under bubblewrap and in its own cgroup where the host allows, with Node's permission flags, and
 * with its own egress proxy. The supervisor exchanges control messages with it on its control
 * channel (sandbox/control.ts), and talks to each of its instances over that instance's own channel:
 * one of CHANNEL_SLOTS socketpairs made at spawn (inherited fds, so nothing outside the process can
 * connect to them). The process is untrusted: a control message about an instance that is not its
 * own, a malformed or oversized one, or a malformed frame on a channel, ends it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KylixError } from '../errors.js';
import type { RevisionLimits } from '../resources/serving.js';
import {
  CONTROL_FD,
  ControlChannel,
  MAX_CONTROL_FROM_SANDBOX,
  SANDBOX_CONTROL_BUDGET,
} from '../sandbox/control.js';
import type { FromSandbox, InstanceSpec, LogRecord, ToSandbox, WorkerSpec } from '../sandbox/protocol.js';
import { bootSlot } from './boot-slots.js';
import { InstanceChannel, type InstanceHooks } from './instance-channel.js';
import { bubblewrapArgs } from './isolation/bubblewrap.js';
import type { SandboxCgroup } from './isolation/cgroups.js';
import { type EgressObserver, startEgressProxy } from './isolation/egress-proxy.js';
import type { Isolation } from './isolation/isolation.js';
import { fsScope, permissionFlag } from './isolation/node-runtime.js';
import { LogLimiter } from './log-limiter.js';
import type { SandboxEvents, SandboxInstance } from './sandbox.js';

/**
 * The sandbox entry point, a self-contained bundle that `npm run build` writes to dist/sandbox/
 * (this file lives two levels below the package root both as src/ and as dist/).
 */
export const SANDBOX_HOST = fileURLToPath(new URL('../../dist/sandbox/host.js', import.meta.url));

/** Memory a sandbox process needs besides its instances' heaps (Node itself, code, buffers). */
const BASE_MEMORY_MIB = 64;
/** Per instance, beyond its heap cap: the worker's young generation, stack and native state. */
const INSTANCE_OVERHEAD_MIB = 32;
/** Unassigned workers each sandbox process keeps started (KYLIX_WARM_WORKERS; 0 turns it off). */
const WARM_WORKERS = Math.max(0, Number(process.env.KYLIX_WARM_WORKERS ?? 1) || 0);
/** The heap cap warm workers start with: spec.limits.memoryMiB's default, so most instances can use one. */
export const DEFAULT_MEMORY_MIB = 128;
/** How much CPU loading a module (its global scope) may use before the revision is refused. */
export const STARTUP_LIMIT_MS = 1000;
/**
 * Instance channels made at spawn (fds 4…): a channel's fd closes with its instance, so a process
 * can start this many instances in its life; then the runtime gives the revision a fresh process.
 */
export const CHANNEL_SLOTS = 12;
/**
 * Threads in a sandbox process's pool (crypto.subtle, compression run there): few, so one revision
 * cannot spread work over every core; what they use is charged to its requests (sandbox/watchdog.ts).
 */
const SANDBOX_THREADPOOL = '2';
/** Characters of a sandbox process's stderr passed to the platform log per minute; the rest is counted. */
const STDERR_CHARS_PER_MINUTE = 64 * 1024;
/** How long a sandbox process has to report an instance stopped before the process is ended. */
const STOP_WAIT_MS = 5000;
/** The sandbox process's fd of its first channel (0–2 stdio, 3 the control channel). */
const FIRST_CHANNEL_FD = CONTROL_FD + 1;

export type { RevisionLimits };

interface Waiter {
  resolve(instance: SandboxInstance): void;
  reject(err: Error): void;
  channel: InstanceChannel;
  hooks: InstanceHooks;
  logs: LogLimiter;
}

/** See the file comment. */
export class RevisionProcess {
  private child?: ChildProcess;
  /** The current child's control channel. */
  private control?: ControlChannel<FromSandbox, ToSandbox>;
  /** The start under way, shared by everyone who needs the process meanwhile. */
  private spawning?: Promise<ChildProcess>;
  private closed = false;
  private cgroup?: SandboxCgroup;
  private egress?: Server;
  private readonly starting = new Map<string, Waiter>();
  private readonly stopping = new Map<string, () => void>();
  /** Running instance id → its channel and hooks. */
  private readonly running = new Map<
    string,
    { channel: InstanceChannel; hooks: InstanceHooks; logs: LogLimiter }
  >();
  /** Channel slots of the current child not yet given to an instance. */
  private freeSlots: number[] = [];
  /** Instances started (or starting) in the current child: counted before any await, for `full`. */
  private slotsTaken = 0;
  /** Memory each running or starting instance needs (its heap cap plus overhead), by id. */
  private readonly memory = new Map<string, number>();
  /** The cap last applied: lowering it under a live process could OOM-kill it for memory it holds legitimately. */
  private appliedMiB = 0;
  private stderrTail = '';
  private readonly sockDir: string;
  /** The egress proxy reads this on every request, so assign() can change the allow-list. */
  private readonly egressPolicy: { allow: readonly string[]; revisionKey?: string } = { allow: [] };
  private readonly codeDir: string;

  constructor(
    private readonly namespace: string,
    private readonly dir: string,
    private readonly isolation: Isolation,
    private limits: RevisionLimits,
    private readonly events: SandboxEvents,
    private readonly onStderr?: (namespace: string, text: string) => void,
    /** Told of each outbound request of the revision the process serves (tracing's egress spans). */
    private readonly onEgress?: (revisionKey: string) => EgressObserver | undefined,
  ) {
    this.sockDir = join(dir, 'sock');
    this.codeDir = join(dir, 'code');
    mkdirSync(this.sockDir, { recursive: true });
    mkdirSync(this.codeDir, { recursive: true });
    // The sandbox runs as nobody: it must create its sockets here, and read its code.
    chmodSync(this.sockDir, 0o777);
    chmodSync(this.codeDir, 0o755);
  }

  /** Starts the process ahead of need, so the first instance of a revision starts warm. */
  async prestart(): Promise<void> {
    await this.ensureProcess();
  }

  /** Gives a pre-started process to a revision: its CPU limit and egress allow-list. */
  assign(limits: RevisionLimits, revisionKey?: string): void {
    this.limits = limits;
    this.egressPolicy.allow = limits.egressAllow;
    this.egressPolicy.revisionKey = revisionKey;
  }

  /** True while the process runs (a spare that died is not handed out). */
  get alive(): boolean {
    return (
      // Not "its control channel is open": a process whose channel closed is being killed, and a new
      // one must not start before its exit has been handled (the instance maps are per revision).
      !!this.child && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Running, or on its way up: a spare still starting is worth waiting for rather than starting another. */
  get usable(): boolean {
    return !this.closed && (this.alive || this.spawning !== undefined);
  }

  /** The process's pid while it runs (the outermost one: bubblewrap's, when it is used), for metrics. */
  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  /** Instances running or starting here. */
  get size(): number {
    return this.running.size + this.starting.size;
  }

  /** True when every channel slot of the running process has been used: it can start no more instances. */
  get full(): boolean {
    return this.slotsTaken >= CHANNEL_SLOTS;
  }

  /**
   * Loads the bundle in a new worker of this process, on a channel of its own whose binding calls
   * and logs go to `hooks` (bound to the revision by the caller).
   */
  async startInstance(spec: InstanceSpec, hooks: InstanceHooks): Promise<SandboxInstance> {
    // Only this revision's code is visible inside: a copy in the process's own read-only folder.
    const bundlePath = join(this.codeDir, basename(spec.bundlePath));
    if (!existsSync(bundlePath)) copyFileSync(spec.bundlePath, bundlePath);
    this.memory.set(spec.id, spec.memoryMiB + INSTANCE_OVERHEAD_MIB);
    this.slotsTaken++;
    let child: ChildProcess;
    try {
      child = await this.ensureProcess();
    } catch (err) {
      this.memory.delete(spec.id);
      throw err;
    }
    const slot = this.freeSlots.shift();
    const socket = slot === undefined ? undefined : (child.stdio[FIRST_CHANNEL_FD + slot] as Socket | null);
    if (slot === undefined || !socket) {
      this.memory.delete(spec.id);
      throw new KylixError('ERR_NOT_READY', 'The sandbox process has no instance channel left; retry.');
    }
    const full: WorkerSpec = {
      ...spec,
      bundlePath,
      channelFd: FIRST_CHANNEL_FD + slot,
      cpuMs: this.limits.cpuMs,
      startupLimitMs: STARTUP_LIMIT_MS,
      egressSocket: join(this.sockDir, 'egress.sock'),
    };
    const channel = new InstanceChannel(socket, hooks, (reason) => this.kill(child, reason));
    this.cgroup?.setCpuPriority('normal');
    this.applyMemoryLimit();
    return new Promise((resolve, reject) => {
      this.starting.set(spec.id, { resolve, reject, channel, hooks, logs: new LogLimiter(hooks.log) });
      this.send(child, { type: 'start', instance: full });
    });
  }

  /** Ends a process that broke the protocol: it is not trusted to stop on its own. */
  private kill(child: ChildProcess, reason: string): void {
    this.onStderr?.(this.namespace, `kylix: sandbox process ${child.pid} stopped: ${reason}\n`);
    child.kill('SIGKILL');
  }

  /**
   * Stops an instance. A process that has not reported it stopped within STOP_WAIT_MS is ended:
   * whoever awaits the stop (a rollout retiring a revision, the node shutting down) must not wait
   * on what an untrusted process chooses to say.
   */
  stopInstance(id: string): Promise<void> {
    if (!this.running.has(id) && !this.starting.has(id)) return Promise.resolve();
    const child = this.child;
    return new Promise((resolve) => {
      if (!child) return resolve();
      const timer = setTimeout(() => {
        if (this.stopping.has(id)) this.kill(child, `it did not stop an instance within ${STOP_WAIT_MS} ms`);
      }, STOP_WAIT_MS);
      timer.unref();
      this.stopping.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.send(child, { type: 'stop', id });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    // A start under way finishes (or fails) first, so its process is stopped too.
    await this.spawning?.catch(() => undefined);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      });
    }
    this.egress?.close();
    this.cgroup?.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private send(child: ChildProcess, message: ToSandbox): void {
    if (child === this.child) this.control?.send(message);
  }

  /** The memory cap of the process: Node itself plus what its instances need. */
  private limitMiB(): number {
    let total = BASE_MEMORY_MIB;
    for (const m of this.memory.values()) total += m;
    return total;
  }

  /** Sets the cgroup's (or, without one, the in-process) memory cap; it only grows while the process lives. */
  private applyMemoryLimit(): void {
    this.appliedMiB = Math.max(this.appliedMiB, this.limitMiB());
    const bytes = this.appliedMiB * 2 ** 20;
    if (this.cgroup)
      this.cgroup.setLimits({ memoryBytes: bytes, pids: 256, cpus: this.isolation.cpusPerSandbox });
    else if (this.child) this.send(this.child, { type: 'budget', memoryBytes: bytes });
  }

  /** The command line: Node with its permission flags, inside bwrap when available. */
  private command(): { file: string; args: string[] } {
    const rt = this.isolation.runtime;
    const hostDir = dirname(SANDBOX_HOST);
    const reads = [hostDir, this.codeDir];
    const flags = ['--no-warnings', '--enable-source-maps', permissionFlag(rt.major), '--allow-worker'];
    // Node 20-21 take one comma-separated list; later versions take the flag once per path.
    if (rt.major >= 22) for (const r of reads) flags.push(`--allow-fs-read=${fsScope(rt.major, r)}`);
    else flags.push(`--allow-fs-read=${reads.map((r) => fsScope(rt.major, r)).join(',')}`);
    flags.push(`--allow-fs-write=${fsScope(rt.major, this.sockDir)}`);
    const node = [rt.path, ...flags, SANDBOX_HOST];
    const env = {
      KYLIX_NAMESPACE: this.namespace,
      UV_THREADPOOL_SIZE: SANDBOX_THREADPOOL,
    };
    let file = rt.path;
    let args = node.slice(1);
    if (this.isolation.bubblewrap) {
      file = this.isolation.bubblewrap;
      args = bubblewrapArgs(
        { nodePath: rt.path, readOnly: reads, readWrite: [this.sockDir], tmpBytes: 16 * 2 ** 20, env },
        node,
      );
    }
    if (this.cgroup) {
      // Join the cgroup before anything starts: a shell writes its own pid, then becomes the sandbox.
      const writes = this.cgroup.procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
      args = ['-c', `${writes} && exec "$@"`, 'kylix-sandbox', file, ...args];
      file = '/bin/sh';
    }
    return { file, args };
  }

  /**
   * The running process, started (with its egress proxy) on first use and again after it died;
   * concurrent callers share one start.
   */
  private ensureProcess(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new Error('the sandbox process was closed'));
    if (this.alive) return Promise.resolve(this.child as ChildProcess);
    this.spawning ??= this.spawnProcess().finally(() => {
      this.spawning = undefined;
    });
    return this.spawning;
  }

  private async spawnProcess(): Promise<ChildProcess> {
    if (!this.egress) {
      const policy = this.egressPolicy;
      this.egressPolicy.allow = this.limits.egressAllow;
      this.egress = await startEgressProxy(join(this.sockDir, 'egress.sock'), {
        get allow() {
          return policy.allow;
        },
        installationAllows: this.isolation.egressAllows,
        ...(this.onEgress
          ? {
              observe: (request) => {
                const key = policy.revisionKey;
                const observer = key ? this.onEgress?.(key) : undefined;
                return observer ? observer(request) : () => {};
              },
            }
          : {}),
      });
    }
    this.cgroup?.remove();
    this.cgroup = this.isolation.cgroups.create(`${this.namespace}-${basename(this.dir)}`);
    this.appliedMiB = 0;
    const release = await bootSlot();
    // Closed while the egress proxy started or it waited: spawn nothing that close() would not stop.
    if (this.closed) {
      release();
      throw new Error('the sandbox process was closed');
    }
    let child: ChildProcess;
    try {
      const { file, args } = this.command();
      child = spawn(file, args, {
        // fd 3 is the control channel, 4… the instance channels: all socketpairs.
        stdio: ['ignore', 'ignore', 'pipe', ...Array<'pipe'>(1 + CHANNEL_SLOTS).fill('pipe')],
        env: { TZ: 'UTC', KYLIX_NAMESPACE: this.namespace, UV_THREADPOOL_SIZE: SANDBOX_THREADPOOL },
      });
    } catch (err) {
      release();
      throw err;
    }
    // At once: a spawn that fails (EMFILE, ENOMEM) reports it as an 'error' on the next tick, and
    // without a listener that would end the supervisor.
    child.on('error', () => undefined);
    const controlSocket = child.stdio[CONTROL_FD] as Socket | null | undefined;
    if (!controlSocket || child.pid === undefined) {
      release();
      child.kill('SIGKILL');
      throw new KylixError(
        'ERR_NOT_READY',
        'The sandbox process could not be started (the node may be out of file descriptors or memory); retry.',
      );
    }
    child.stderr?.setEncoding('utf8');
    // The process writes what it likes here: the tail is kept for its exit reason, but only
    // STDERR_BYTES_PER_MINUTE reach the platform's log, so a flood cannot fill the node's disk.
    let window = 0;
    let passed = 0;
    let dropped = 0;
    child.stderr?.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-2000);
      const now = Date.now();
      if (now - window >= 60_000) {
        if (dropped > 0)
          this.onStderr?.(this.namespace, `kylix: ${dropped} characters of sandbox stderr dropped\n`);
        window = now;
        passed = 0;
        dropped = 0;
      }
      const room = Math.max(0, STDERR_CHARS_PER_MINUTE - passed);
      if (room > 0) this.onStderr?.(this.namespace, text.length > room ? text.slice(0, room) : text);
      passed += Math.min(room, text.length);
      dropped += Math.max(0, text.length - room);
    });
    // The slot is held until the process has booted (its first message), or is gone.
    child.once('exit', release);
    setTimeout(release, 10_000).unref();
    let greeted = 0;
    this.control = new ControlChannel<FromSandbox, ToSandbox>(
      controlSocket,
      (m) => {
        release();
        // A process says hello once, when it boots.
        if ((m as { type?: unknown } | null)?.type === 'hello' && greeted++ > 0)
          return this.kill(child, 'a second hello');
        this.onMessage(child, m);
      },
      (why) => this.kill(child, why),
      MAX_CONTROL_FROM_SANDBOX,
      SANDBOX_CONTROL_BUDGET,
    );
    // Without its control channel the process cannot be told to stop anything: it is ended.
    this.control.onClose(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => this.onProcessExit(child, code, signal));
    this.child = child;
    this.freeSlots = Array.from({ length: CHANNEL_SLOTS }, (_, i) => i);
    this.applyMemoryLimit();
    // Workers started ahead of need: a new instance then only loads its module (issue: cold starts).
    this.keepWarm(DEFAULT_MEMORY_MIB);
    return child;
  }

  /**
   * Keeps KYLIX_WARM_WORKERS workers started but unassigned, with this heap cap. A spare does from
   * its start; a revision's process does while it has no instance, so its next one starts warm.
   */
  keepWarm(memoryMiB: number): void {
    // Warming is background work: it must not slow down processes serving requests.
    this.cgroup?.setCpuPriority('background');
    if (WARM_WORKERS > 0 && this.child)
      this.send(this.child, {
        type: 'warm',
        count: WARM_WORKERS,
        egressSocket: join(this.sockDir, 'egress.sock'),
        memoryMiB,
      });
  }

  /**
   * A control message. The process is untrusted, and an exception thrown while handling what it
   * sent would be the supervisor's (uncaught, it ends the node and every tenant on it): whatever
   * fails here ends the process instead.
   */
  private onMessage(child: ChildProcess, m: FromSandbox): void {
    try {
      this.handle(child, m);
    } catch {
      this.kill(child, 'a control message the supervisor could not handle');
    }
  }

  /**
   * One control message; one about an instance this process does not hold, or of an unknown shape,
   * ends it. Its fields are read by type only, never converted (String() of an object whose
   * toString is not a function throws), and texts are cut to MAX_REASON_CHARS: they become Function
   * status, Events and log lines, and a 100 MB error message from tenant code must not.
   */
  private handle(child: ChildProcess, m: FromSandbox): void {
    if (typeof m !== 'object' || m === null) {
      this.kill(child, 'a malformed control message');
      return;
    }
    const id = (m as { id?: unknown }).id;
    const known = typeof id === 'string' && (this.starting.has(id) || this.running.has(id));
    switch (m.type) {
      case 'hello':
        return;
      case 'ready': {
        const w = this.starting.get(m.id);
        if (!w) {
          this.kill(child, `a ready message for an instance it does not hold`);
          return;
        }
        this.starting.delete(m.id);
        this.running.set(m.id, { channel: w.channel, hooks: w.hooks, logs: w.logs });
        const startupMs = typeof m.startupMs === 'number' && Number.isFinite(m.startupMs) ? m.startupMs : 0;
        w.resolve({ id: m.id, channel: w.channel, startupMs });
        return;
      }
      case 'failed': {
        const w = this.starting.get(m.id);
        if (!w) {
          this.kill(child, `a failed message for an instance it does not hold`);
          return;
        }
        this.starting.delete(m.id);
        this.memory.delete(m.id);
        w.channel.close();
        w.reject(new KylixError('ERR_NOT_READY', `The function failed to start: ${reason(m.message)}`));
        return;
      }
      case 'limit': {
        const r = this.running.get(m.id);
        if (!r) {
          if (!known) this.kill(child, 'a limit message for an instance it does not hold');
          return;
        }
        if (m.code !== 'ERR_CPU_LIMIT' && m.code !== 'ERR_MEMORY_LIMIT') {
          this.kill(child, 'an unknown limit');
          return;
        }
        const message = reason(m.message);
        r.channel.setFate({ code: m.code, message });
        r.hooks.log(stoppedRecord(message));
        return;
      }
      case 'log': {
        const target = this.starting.get(m.id) ?? this.running.get(m.id);
        if (!target) {
          if (!known) this.kill(child, 'a log message for an instance it does not hold');
          return;
        }
        const r = m.record as Partial<LogRecord> | undefined;
        if (typeof r?.message !== 'string') {
          this.kill(child, 'a malformed log record');
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
        const r = this.running.get(m.id);
        this.running.delete(m.id);
        this.memory.delete(m.id);
        r?.channel.close();
        r?.logs.flush();
        const stopped = this.stopping.get(m.id);
        this.stopping.delete(m.id);
        if (stopped) stopped();
        else if (r)
          this.events.exit(
            m.id,
            typeof m.message === 'string'
              ? reason(m.message)
              : `exit code ${typeof m.code === 'number' ? m.code : '?'}`,
          );
        return;
      }
      default: {
        this.kill(child, 'an unknown control message');
        return;
      }
    }
  }

  /** The whole process died: every instance in it is gone. */
  private onProcessExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.child === child) this.child = undefined;
    const oom = this.cgroup?.oomKilled() ?? false;
    const last = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    const peak = oom ? this.cgroup?.peakBytes() : undefined;
    const reason = oom
      ? `the sandbox process used more than its memory limit (${this.appliedMiB} MiB) and was killed${peak ? ` (peak ${Math.round(peak / 2 ** 20)} MiB)` : ''}`
      : `sandbox process exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ''}`;
    this.stderrTail = '';
    for (const w of this.starting.values()) {
      w.channel.close();
      w.reject(new KylixError('ERR_NOT_READY', `The function failed to start: ${reason}`));
    }
    this.starting.clear();
    for (const [, resolve] of this.stopping) resolve();
    this.stopping.clear();
    for (const [id, { channel, hooks }] of this.running) {
      if (oom) {
        channel.setFate({ code: 'ERR_MEMORY_LIMIT', message: reason });
        hooks.log(stoppedRecord(reason));
      }
      channel.close();
      this.events.exit(id, reason);
    }
    this.running.clear();
    this.memory.clear();
  }
}

/** The longest text from a sandbox process (a failure, a limit, an exit) the supervisor keeps. */
export const MAX_REASON_CHARS = 8 * 1024;

/** A text a sandbox process sent, cut to MAX_REASON_CHARS; anything but a string says so. */
function reason(value: unknown): string {
  if (typeof value !== 'string') return '(no reason given)';
  if (value.length <= MAX_REASON_CHARS) return value;
  return `${value.slice(0, MAX_REASON_CHARS)}… (${value.length - MAX_REASON_CHARS} more characters)`;
}

/** The function's log line for an instance the sandbox stopped. */
function stoppedRecord(reason: string): LogRecord {
  return { level: 'error', message: `Instance stopped: ${reason}.`, time: new Date().toISOString() };
}
