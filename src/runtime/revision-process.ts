/**
 * One sandbox process: the tenant code of one function revision (so never two namespaces), started
 * under bubblewrap and in its own cgroup where the host allows, with Node's permission flags, and
 * with its own egress proxy. The supervisor exchanges control messages with it on its control
 * channel (sandbox/control.ts), and talks to each of its instances over that instance's own channel:
 * one of CHANNEL_SLOTS socketpairs made at spawn (inherited fds, so nothing outside the process can
 * connect to them). The process is untrusted: a control message about an instance that is not its
 * own, a malformed or oversized one, or a malformed frame on a channel, ends it.
 *
 * This file holds its life (start, instances, memory cap, warm workers, exit); how it is spawned is
 * in sandbox-command.ts, its control channel in sandbox-control.ts (what it says about its
 * instances in control-messages.ts; whether it still answers in liveness.ts), and its stderr
 * (bounded on its way to the log, its tail the exit reason) in sandbox-stderr.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { basename, join } from 'node:path';
import { KylixError } from '../errors.js';
import type { RevisionLimits } from '../resources/serving.js';
import type { ControlChannel } from '../sandbox/control.js';
import {
  type FromSandbox,
  type InstanceSpec,
  STARTUP_WALL_FACTOR,
  type ToSandbox,
  type WorkerSpec,
} from '../sandbox/protocol.js';
import { bootSlot } from './boot-slots.js';
import { type ProcessInstances, stoppedRecord } from './control-messages.js';
import { InstanceChannel, type InstanceHooks } from './instance-channel.js';
import type { SandboxCgroup } from './isolation/cgroups.js';
import { type EgressObserver, startEgressProxy } from './isolation/egress-proxy.js';
import type { Isolation } from './isolation/isolation.js';
import { LogLimiter } from './log-limiter.js';
import type { SandboxEvents, SandboxInstance } from './sandbox.js';
import { CHANNEL_SLOTS, FIRST_CHANNEL_FD, type SpawnedSandbox, spawnSandbox } from './sandbox-command.js';
import { superviseControl } from './sandbox-control.js';
import { exitReason, followStderr, oomReason } from './sandbox-stderr.js';

export { MAX_REASON_CHARS } from './control-messages.js';
export { CHANNEL_SLOTS, SANDBOX_HOST } from './sandbox-command.js';

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
/** How long a sandbox process has to report an instance stopped before the process is ended. */
const STOP_WAIT_MS = 5000;
/**
 * How long a sandbox process has to report an instance started (ready or failed) before the process
 * is ended: its own wall-clock backstop for loading a module, and 10 s more for booting the
 * instance's thread on a busy host. What waits for a start must not wait on what an untrusted
 * process chooses to say.
 */
const START_WAIT_MS = STARTUP_LIMIT_MS * STARTUP_WALL_FACTOR + 10_000;

export type { RevisionLimits };

/** Why the supervisor ended a process, for the reason its instances' exit gives. */
const endedFor = new WeakMap<ChildProcess, string>();

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
  /** Its instances: starting, stopping, running, and the memory each needs. */
  private readonly instances: ProcessInstances = {
    starting: new Map(),
    stopping: new Map(),
    running: new Map(),
    memory: new Map(),
  };
  /** Channel slots of the current child not yet given to an instance. */
  private freeSlots: number[] = [];
  /** Instances started (or starting) in the current child: counted before any await, for `full`. */
  private slotsTaken = 0;
  /** The cap last applied: lowering it under a live process could OOM-kill it for memory it holds legitimately. */
  private appliedMiB = 0;
  private readonly sockDir: string;
  /** The egress proxy's socket, in sockDir: the one path the sandbox may connect to. */
  private readonly egressSocket: string;
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
    this.egressSocket = join(this.sockDir, 'egress.sock');
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
    return this.instances.running.size + this.instances.starting.size;
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
    this.instances.memory.set(spec.id, spec.memoryMiB + INSTANCE_OVERHEAD_MIB);
    this.slotsTaken++;
    let child: ChildProcess;
    try {
      child = await this.ensureProcess();
    } catch (err) {
      this.instances.memory.delete(spec.id);
      throw err;
    }
    const slot = this.freeSlots.shift();
    const socket = slot === undefined ? undefined : (child.stdio[FIRST_CHANNEL_FD + slot] as Socket | null);
    if (slot === undefined || !socket) {
      this.instances.memory.delete(spec.id);
      throw new KylixError('ERR_NOT_READY', 'The sandbox process has no instance channel left; retry.');
    }
    const full: WorkerSpec = {
      ...spec,
      bundlePath,
      channelFd: FIRST_CHANNEL_FD + slot,
      cpuMs: this.limits.cpuMs,
      startupLimitMs: STARTUP_LIMIT_MS,
      egressSocket: this.egressSocket,
    };
    const channel = new InstanceChannel(socket, hooks, (reason) => this.kill(child, reason), this.namespace);
    this.cgroup?.setCpuPriority('normal');
    this.applyMemoryLimit();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const w = this.instances.starting.get(spec.id);
        if (!w) return;
        // Answered here, with the reason, whatever the process's exit then says.
        this.instances.starting.delete(spec.id);
        w.channel.close();
        w.reject(
          new KylixError(
            'ERR_NOT_READY',
            `The function did not start: its sandbox process did not report the instance started within ${START_WAIT_MS / 1000} s, and was stopped.`,
          ),
        );
        this.kill(child, `it did not report instance ${spec.id} started within ${START_WAIT_MS} ms`);
      }, START_WAIT_MS);
      timer.unref();
      this.instances.starting.set(spec.id, {
        resolve: (instance) => {
          clearTimeout(timer);
          resolve(instance);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        channel,
        hooks,
        logs: new LogLimiter(hooks.log),
      });
      this.send(child, { type: 'start', instance: full });
    });
  }

  /** Ends a process that broke the protocol: it is not trusted to stop on its own. */
  private kill(child: ChildProcess, reason: string): void {
    this.onStderr?.(this.namespace, `kylix: sandbox process ${child.pid} stopped: ${reason}\n`);
    if (!endedFor.has(child)) endedFor.set(child, reason);
    child.kill('SIGKILL');
  }

  /**
   * Stops an instance. A process that has not reported it stopped within STOP_WAIT_MS is ended:
   * whoever awaits the stop (a rollout retiring a revision, the node shutting down) must not wait
   * on what an untrusted process chooses to say.
   */
  stopInstance(id: string): Promise<void> {
    if (!this.instances.running.has(id) && !this.instances.starting.has(id)) return Promise.resolve();
    const child = this.child;
    return new Promise((resolve) => {
      if (!child) return resolve();
      const timer = setTimeout(() => {
        if (this.instances.stopping.has(id))
          this.kill(child, `it did not stop an instance within ${STOP_WAIT_MS} ms`);
      }, STOP_WAIT_MS);
      timer.unref();
      this.instances.stopping.set(id, () => {
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
    for (const m of this.instances.memory.values()) total += m;
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
      this.egress = await startEgressProxy(this.egressSocket, {
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
    let spawned: SpawnedSandbox;
    try {
      spawned = spawnSandbox({
        namespace: this.namespace,
        isolation: this.isolation,
        codeDir: this.codeDir,
        sockDir: this.sockDir,
        cgroup: this.cgroup,
      });
    } catch (err) {
      release();
      throw err;
    }
    const { child, controlSocket } = spawned;
    const stderrTail = followStderr(child, (text) => this.onStderr?.(this.namespace, text));
    // The slot is held until the process has booted (its first message), or is gone.
    child.once('exit', release);
    setTimeout(release, 10_000).unref();
    this.control = superviseControl(
      child,
      controlSocket,
      this.instances,
      this.events,
      (why) => this.kill(child, why),
      release,
    );
    child.on('exit', (code, signal) => this.onProcessExit(child, code, signal, stderrTail()));
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
        egressSocket: this.egressSocket,
        memoryMiB,
      });
  }

  /** The whole process died: every instance in it is gone. */
  private onProcessExit(
    child: ChildProcess,
    code: number | null,
    signal: string | null,
    stderrTail: string,
  ): void {
    if (this.child === child) this.child = undefined;
    const oom = this.cgroup?.oomKilled() ?? false;
    const ended = endedFor.get(child);
    const reason = oom
      ? oomReason(this.appliedMiB, this.cgroup?.peakBytes())
      : ended
        ? `the sandbox process was stopped: ${ended}`
        : exitReason(code, signal, stderrTail);
    for (const w of this.instances.starting.values()) {
      w.channel.close();
      w.reject(new KylixError('ERR_NOT_READY', `The function failed to start: ${reason}`));
    }
    this.instances.starting.clear();
    for (const [, resolve] of this.instances.stopping) resolve();
    this.instances.stopping.clear();
    for (const [id, { channel, hooks }] of this.instances.running) {
      if (oom) {
        channel.setFate({ code: 'ERR_MEMORY_LIMIT', message: reason });
        hooks.log(stoppedRecord(reason));
      }
      channel.close();
      this.events.exit(id, reason);
    }
    this.instances.running.clear();
    this.instances.memory.clear();
  }
}
