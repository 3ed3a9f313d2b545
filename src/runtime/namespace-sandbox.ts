/**
 * The Sandbox of one namespace: one sandbox process per function revision (see revision-process.ts),
 * so a revision that blows its memory cap or is killed takes no other function down with it. Once a
 * namespace is in use it keeps one spare process started, so a new revision starts warm.
 */
import { join } from 'node:path';
import { KylixError } from '../errors.js';
import type { RevisionKey, RevisionLimits } from '../resources/serving.js';
import type { InstanceSpec } from '../sandbox/protocol.js';
import type { InstanceHooks } from './instance-channel.js';
import type { EgressObserver } from './isolation/egress-proxy.js';
import type { Isolation } from './isolation/isolation.js';
import { DEFAULT_MEMORY_MIB, RevisionProcess } from './revision-process.js';
import type { Sandbox, SandboxEvents, SandboxInstance } from './sandbox.js';

export { SANDBOX_HOST } from './revision-process.js';

/** Options for process sandboxes. */
export interface NamespaceSandboxOptions {
  isolation: Isolation;
  /** Where the sandbox's own stderr goes (the platform log). */
  onStderr?: (namespace: string, text: string) => void;
  /** Observes a revision's outbound requests through its egress proxy (tracing). */
  onEgress?: (revisionKey: string) => EgressObserver | undefined;
}

let processCounter = 0;
/** The limits of a spare, and of a revision the store does not know. */
const DEFAULT_LIMITS: RevisionLimits = { cpuMs: 1000, egressAllow: [] };
/**
 * How long a revision's process stays up with no instances, with a warm worker, so the next
 * instance (a burst of requests after scale to zero, a restart after a limit) starts in a few ms.
 * After that a new start takes the namespace's spare, which is about as fast.
 */
const IDLE_PROCESS_MS = 10_000;

/** See the file comment. */
export class NamespaceSandbox implements Sandbox {
  readonly kind: string;
  private readonly processes = new Map<string, Promise<RevisionProcess>>();
  private readonly byInstance = new Map<string, string>();
  /** The heap cap of each instance, for the warm worker its process keeps once idle. */
  private readonly memoryOf = new Map<string, number>();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();
  private spare?: RevisionProcess;
  /** Processes with no channel left, closing once their last instance stops. */
  private readonly retired = new Set<RevisionProcess>();
  /** The process of each instance (a revision's may change while its instances run). */
  private readonly processOf = new Map<string, RevisionProcess>();
  /** The next spare starts when this fires (not on the path of the start that used the last one). */
  private spareTimer?: NodeJS.Timeout;
  private closed = false;
  /** The events its processes report, with idle-process clean-up added to exits. */
  private readonly events: SandboxEvents;

  constructor(
    private readonly namespace: string,
    events: SandboxEvents,
    private readonly options: NamespaceSandboxOptions,
  ) {
    // An instance that ends on its own (a crash, a limit) may leave its revision's process idle.
    this.events = {
      ...events,
      exit: (id, reason) => {
        events.exit(id, reason);
        const key = this.byInstance.get(id);
        this.byInstance.delete(id);
        this.forget(id);
        if (key) void this.releaseIfIdle(key);
      },
    };
    const layers = options.isolation.layers.filter((l) => l.on).map((l) => l.name);
    this.kind = `process (${layers.join(', ')})`;
  }

  async startInstance(
    revision: { key: RevisionKey; limits: RevisionLimits },
    spec: InstanceSpec,
    hooks: InstanceHooks,
  ): Promise<SandboxInstance> {
    const revisionKey = revision.key;
    if (this.closed) throw new KylixError('ERR_NOT_READY', 'The platform is shutting down.');
    // Claimed before any await, so releaseIfIdle cannot close the process under this start.
    this.byInstance.set(spec.id, revisionKey);
    this.memoryOf.set(revisionKey, spec.memoryMiB);
    clearTimeout(this.idleTimers.get(revisionKey));
    this.idleTimers.delete(revisionKey);
    try {
      const p = this.process(revisionKey, revision.limits);
      let proc = await p;
      if (proc.full) {
        // Every channel of that process was used once: the revision moves to a fresh one, and the
        // old one closes when its last instance stops.
        if (this.processes.get(revisionKey) === p) this.processes.delete(revisionKey);
        this.retired.add(proc);
        proc = await this.process(revisionKey, revision.limits);
      }
      this.processOf.set(spec.id, proc);
      return await proc.startInstance(spec, hooks);
    } catch (err) {
      this.byInstance.delete(spec.id);
      this.forget(spec.id);
      // A revision whose module fails to start must not keep its process forever.
      void this.releaseIfIdle(revisionKey);
      throw err;
    }
  }

  async stopInstance(id: string): Promise<void> {
    const key = this.byInstance.get(id);
    this.byInstance.delete(id);
    const proc = this.processOf.get(id);
    if (!key || !proc) return;
    await proc.stopInstance(id);
    this.forget(id);
    await this.releaseIfIdle(key);
  }

  /** Each process that runs instances, once per revision (a revision may have a retired one too). */
  *processIds(): Iterable<{ revisionKey: string; pid: number }> {
    const seen = new Set<RevisionProcess>();
    for (const [id, proc] of this.processOf) {
      const revisionKey = this.byInstance.get(id);
      const pid = proc.pid;
      if (!revisionKey || pid === undefined || seen.has(proc)) continue;
      seen.add(proc);
      yield { revisionKey, pid };
    }
  }

  /** Forgets which process an instance ran in; a retired process closes with its last instance. */
  private forget(id: string): void {
    const proc = this.processOf.get(id);
    this.processOf.delete(id);
    if (proc && this.retired.has(proc) && proc.size === 0) {
      this.retired.delete(proc);
      void proc.close();
    }
  }

  /** A revision with no instances left keeps its process a while, with a warm worker, then closes it. */
  private async releaseIfIdle(key: string): Promise<void> {
    const p = this.processes.get(key);
    if (!p) return;
    const proc = await p.catch(() => undefined);
    if (!proc || !this.idle(key, p, proc) || this.idleTimers.has(key)) return;
    proc.keepWarm(this.memoryOf.get(key) ?? DEFAULT_MEMORY_MIB);
    const timer = setTimeout(() => {
      this.idleTimers.delete(key);
      if (!this.idle(key, p, proc)) return;
      this.processes.delete(key);
      this.memoryOf.delete(key);
      void proc.close();
    }, IDLE_PROCESS_MS);
    timer.unref();
    this.idleTimers.set(key, timer);
  }

  /** No instance of the revision runs or is being started. */
  private idle(key: string, p: Promise<RevisionProcess>, proc: RevisionProcess): boolean {
    if (proc.size > 0 || this.processes.get(key) !== p) return false;
    for (const k of this.byInstance.values()) if (k === key) return false;
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.spareTimer);
    for (const t of this.idleTimers.values()) clearTimeout(t);
    this.idleTimers.clear();
    await this.spare?.close();
    this.spare = undefined;
    await Promise.all([...this.retired].map((p) => p.close()));
    this.retired.clear();
    const all = [...this.processes.values()];
    this.processes.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }

  private process(revisionKey: string, limits: RevisionLimits): Promise<RevisionProcess> {
    let p = this.processes.get(revisionKey);
    if (!p) {
      p = (async () => {
        const spare = this.spare;
        this.spare = undefined;
        const proc = spare?.usable ? spare : this.newProcess(limits);
        if (spare && proc !== spare) void spare.close();
        proc.assign(limits, revisionKey);
        this.prestartSpare();
        return proc;
      })();
      this.processes.set(revisionKey, p);
      // A start that failed here is tried afresh next time.
      const started = p;
      started.catch(() => {
        if (this.processes.get(revisionKey) === started) this.processes.delete(revisionKey);
      });
    }
    return p;
  }

  private newProcess(limits: RevisionLimits): RevisionProcess {
    return new RevisionProcess(
      this.namespace,
      join(this.options.isolation.root, `p${++processCounter}`),
      this.options.isolation,
      limits,
      this.events,
      this.options.onStderr,
      this.options.onEgress,
    );
  }

  /** Starts the next spare in the background, after the current start has had the CPU. */
  private prestartSpare(): void {
    if (this.closed || this.spareTimer) return;
    this.spareTimer = setTimeout(() => {
      this.spareTimer = undefined;
      if (this.closed || this.spare) return;
      const spare = this.newProcess(DEFAULT_LIMITS);
      this.spare = spare;
      spare.prestart().catch(() => undefined);
    }, 200);
    this.spareTimer.unref();
  }
}
