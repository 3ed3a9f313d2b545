/**
 * The runtime: a pool of instances per revision, one sandbox per namespace. Pools grow when every
 * instance is at its target concurrency, shrink when instances sit idle (down to zero unless
 * minInstances says otherwise), and an instance that dies is replaced on the next request.
 */
import type { BindingKindName } from '../resources/binding-kinds.js';
import type { FunctionSpec } from '../resources/kinds.js';
import type { RevisionStats, RevisionTarget } from '../resources/serving.js';
import type { BindingCall, LogRecord } from '../sandbox/protocol.js';
import { CpuGauge } from './cpu-gauge.js';
import type { InstanceChannel } from './instance-channel.js';
import { type Client, type GrowthBounds, type Lease, RevisionPool } from './pool.js';
import type { Sandbox, SandboxFactory } from './sandbox.js';

export { PoolBusyError, type ScalingPolicy } from './pool.js';

export type { Lease };

/** Where instance logs go: the function's log. */
export type LogSink = (target: RevisionTarget, record: LogRecord) => void;

/** Runs an instance's binding call for its revision (the broker). */
export type RpcHandler = (target: RevisionTarget, call: BindingCall) => Promise<unknown>;

/** What the runtime is built from. */
export interface RuntimeOptions {
  makeSandbox: SandboxFactory;
  logSink: LogSink;
  /** An instance stopped unexpectedly. */
  onCrash?: (target: RevisionTarget, reason: string) => void;
  rpc?: RpcHandler;
  /** The clock, injectable for tests. */
  now?: () => number;
}

/** A revision's live figures, for `kylix describe`. */
export type { RevisionStats };

/** The kind of each non-secret binding (secrets travel as env strings). */
function bindingKinds(bindings: FunctionSpec['bindings']): Record<string, BindingKindName> {
  const out: Record<string, BindingKindName> = {};
  for (const [name, b] of Object.entries(bindings)) {
    if ('secret' in b) continue;
    out[name] = Object.keys(b)[0] as BindingKindName;
  }
  return out;
}

/** How often idle instances are looked for. */
const REAP_INTERVAL_MS = 500;

/** See the file comment. */
export class Runtime {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly pools = new Map<string, RevisionPool>();
  private readonly byInstance = new Map<string, RevisionPool>();
  /** Instances being stopped on purpose: their exit is not a crash. */
  private readonly stopping = new Set<string>();
  private counter = 0;
  private readonly reaper: NodeJS.Timeout;
  private readonly cpu = new CpuGauge();
  /**
   * What every pool may grow to beyond its spec: one instance per usable core (at least two, so a
   * stuck or slow instance always has a sibling), more only with spare CPU.
   */
  private readonly bounds: GrowthBounds = {
    maxByCores: Math.max(2, this.cpu.cores),
    cpuAvailable: () => !this.cpu.saturated(),
  };

  private readonly makeSandbox: SandboxFactory;
  private readonly logSink: LogSink;
  private readonly onCrash: (target: RevisionTarget, reason: string) => void;
  private readonly rpc: RpcHandler;
  private readonly now: () => number;

  constructor(options: RuntimeOptions) {
    this.makeSandbox = options.makeSandbox;
    this.logSink = options.logSink;
    this.onCrash = options.onCrash ?? (() => {});
    this.rpc = options.rpc ?? (async () => Promise.reject(new Error('bindings are not available here')));
    this.now = options.now ?? Date.now;
    this.reaper = setInterval(() => {
      this.cpu.sample();
      this.reap();
    }, REAP_INTERVAL_MS).unref();
  }

  /**
   * Makes the revision runnable and proves it starts: one instance is started (and kept only if
   * minInstances asks for it), so a module that fails to load is reported at deploy.
   */
  async deploy(target: RevisionTarget): Promise<{ startupMs: number }> {
    let pool = this.pools.get(target.key);
    if (!pool) {
      pool = new RevisionPool(
        target,
        target.scaling,
        (p) => this.startInstance(target, p),
        (i) => this.stopInstance(target, i),
        this.now,
        this.bounds,
      );
      this.pools.set(target.key, pool);
    } else {
      pool.setPolicy(target.scaling);
    }
    try {
      return await pool.warmUp();
    } catch (err) {
      this.pools.delete(target.key);
      throw err;
    }
  }

  /** Whether the runtime knows this revision (deployed and not retired). */
  has(key: string): boolean {
    return this.pools.has(key);
  }

  /** Lends an instance of the revision to one request, starting or adding one when needed. */
  acquire(key: string): Promise<Lease> {
    return Promise.resolve(this.lend(key));
  }

  /**
   * As acquire(), but a lease that is there now comes as it is, not in a promise (the gateway's
   * path); while it waits for a start, the request is forgotten once `client` is destroyed.
   */
  lend(key: string, client?: Client): Lease | Promise<Lease> {
    const pool = this.pools.get(key);
    if (!pool) return Promise.reject(new Error(`revision ${key} is not deployed`));
    return pool.lend(client);
  }

  /** Requests the revision is serving right now (for draining before it stops). */
  inFlight(key: string): number {
    return this.pools.get(key)?.inFlight() ?? 0;
  }

  /** Live figures of a revision. */
  stats(key: string): RevisionStats | undefined {
    return this.pools.get(key)?.stats();
  }

  /** Every deployed revision's key ("namespace/function/revision"), for metrics at scrape time. */
  revisionKeys(): string[] {
    return [...this.pools.keys()];
  }

  /** The sandbox processes running instances, with their revision keys (metrics read their CPU and memory). */
  *sandboxProcesses(): Iterable<{ revisionKey: string; pid: number }> {
    for (const s of this.sandboxes.values()) if (s.processIds) yield* s.processIds();
  }

  /**
   * The gateway saw an instance's connection fail: stop using it now, rather than waiting for the
   * sandbox to report the exit, so the next request starts a fresh instance.
   */
  instanceFailed(instanceId: string): void {
    this.byInstance.get(instanceId)?.remove(instanceId, true);
  }

  /** Stops the revision's instances and forgets it. */
  async retire(key: string): Promise<void> {
    const pool = this.pools.get(key);
    if (!pool) return;
    this.pools.delete(key);
    await pool.close();
  }

  /** Scales idle instances down; runs on a timer, callable directly by tests. */
  reap(): void {
    for (const pool of this.pools.values()) pool.reap();
  }

  /** Stops everything. */
  async close(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
    await Promise.all([...this.sandboxes.values()].map((s) => s.close()));
    this.sandboxes.clear();
  }

  /**
   * Starts an instance of the revision. Its binding calls and logs are bound here, to this target:
   * whatever its sandbox process later says, its channel acts for this revision only.
   */
  private async startInstance(
    target: RevisionTarget,
    pool: RevisionPool,
  ): Promise<{ id: string; channel: InstanceChannel; startupMs: number }> {
    const id = `${target.key}/${++this.counter}`;
    this.byInstance.set(id, pool);
    try {
      const started = await this.sandbox(target.namespace).startInstance(
        target,
        {
          id,
          bundlePath: target.bundlePath,
          env: target.env,
          ...(target.vars ? { vars: target.vars } : {}),
          bindings: bindingKinds(target.bindings),
          ...(target.assets ? { assets: { binding: target.assets.binding } } : {}),
          memoryMiB: target.memoryMiB,
        },
        {
          rpc: (call) => this.rpc(target, call),
          log: (record) => this.logSink(target, record),
        },
      );
      return { id, channel: started.channel, startupMs: started.startupMs };
    } catch (err) {
      this.byInstance.delete(id);
      throw err;
    }
  }

  private async stopInstance(target: RevisionTarget, id: string): Promise<void> {
    // Forget the instance only once it is gone: its last log lines (a flood's "dropped" count)
    // arrive just before the sandbox reports the exit, and must still reach the function's log.
    this.stopping.add(id);
    try {
      await this.sandboxes.get(target.namespace)?.stopInstance(id);
    } finally {
      this.byInstance.delete(id);
      this.stopping.delete(id);
    }
  }

  private sandbox(namespace: string): Sandbox {
    let s = this.sandboxes.get(namespace);
    if (!s) {
      s = this.makeSandbox(namespace, {
        exit: (id, reason) => {
          const pool = this.byInstance.get(id);
          if (!pool || this.stopping.has(id)) return;
          this.byInstance.delete(id);
          pool.remove(id, false);
          this.onCrash(pool.owner, reason);
        },
      });
      this.sandboxes.set(namespace, s);
    }
    return s;
  }
}
