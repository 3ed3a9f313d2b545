/**
 * The instances of one revision and the scaling decisions about them: requests go to the least
 * busy instance; a new instance is started when every instance is at its target concurrency (up
 * to maxInstances); instances idle for idleSeconds are stopped, down to minInstances (zero by
 * default: an idle function holds no instance at all).
 *
 * A burst must not make things worse: an instance is one thread, so a revision runs and starts no
 * more instances than the cores it can use (`maxByCores`), and none is added while the node's CPU
 * is saturated (starting one would take CPU from the requests being served), except a second one
 * beside an instance that has stalled (busy for a second without finishing a request). Requests
 * waiting for a cold start are bounded too (targetConcurrency per starting instance); past that
 * they are refused with `PoolBusyError`, which the gateway answers 503 with Retry-After.
 */

import type { RevisionTarget, ScalingPolicy } from '../resources/serving.js';
import type { InstanceChannel } from './instance-channel.js';

export type { ScalingPolicy };

/** One running instance and its load. */
export interface Instance {
  id: string;
  /** The instance's channel: requests and events go on it. */
  channel: InstanceChannel;
  inFlight: number;
  /** When a request last finished (or the instance started). */
  lastUsed: number;
  /** When its requests in flight last went from none to some. */
  busySince: number;
  startupMs: number;
  /** Requests served so far. */
  served: number;
}

/** An instance lent to one request; release() must be called exactly once when it is done. */
export interface Lease {
  instance: Instance;
  /** True when this request had to wait for an instance to start. */
  cold: boolean;
  /** How long it waited for that start, in ms (0 when warm). */
  waitedMs: number;
  release(): void;
}

interface Waiter {
  since: number;
  client?: Client;
  resolve(lease: Lease): void;
  reject(err: Error): void;
}

/** Whom a lease is for: a waiter whose client has gone (a client that left, a closed response) is dropped. */
export interface Client {
  readonly destroyed: boolean;
}

const gone = (w: Waiter) => w.client?.destroyed === true;

/** The pool cannot take another request now: too many are waiting for instances to start. */
export class PoolBusyError extends Error {
  constructor() {
    super('too many requests are waiting for an instance to start');
    this.name = 'PoolBusyError';
  }
}

/** How a pool bounds its growth beyond spec.scaling (the runtime passes the node's figures). */
export interface GrowthBounds {
  /** Instances (running + starting) a revision may have at most: the cores they can use. */
  maxByCores: number;
  /** False while the node's CPU is saturated: no instance is added then (a first one still is). */
  cpuAvailable(): boolean;
}

/** No bounds beyond spec.scaling: for pools built directly (tests). */
const UNBOUNDED: GrowthBounds = { maxByCores: Number.POSITIVE_INFINITY, cpuAvailable: () => true };

type StartFn = (pool: RevisionPool) => Promise<{ id: string; channel: InstanceChannel; startupMs: number }>;
type StopFn = (id: string) => Promise<void>;

/**
 * An instance that has never served a request (the one a deploy starts to prove the module loads)
 * is released after this long even when idleSeconds is longer, so a thousand deployed but unused
 * functions do not hold a thousand instances.
 */
const UNUSED_IDLE_MS = 30_000;

/** An instance with requests in flight that finished none for this long is stalled (ms). */
const STALLED_MS = 1000;

/** Cold-start durations kept for p50/p99. */
const COLD_SAMPLES = 200;

/** A Lease as an object of its own class: no closure per request. */
class PoolLease implements Lease {
  readonly cold: boolean;
  private released = false;

  constructor(
    readonly instance: Instance,
    readonly waitedMs: number,
    private readonly now: () => number,
  ) {
    this.cold = waitedMs > 0;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.instance.inFlight--;
    this.instance.lastUsed = this.now();
  }
}

/** See the file comment. */
export class RevisionPool {
  private instances: Instance[] = [];
  private starting = 0;
  private waiters: Waiter[] = [];
  private coldStarts: number[] = [];
  private closed = false;

  constructor(
    readonly owner: RevisionTarget,
    private policy: ScalingPolicy,
    private readonly start: StartFn,
    private readonly stop: StopFn,
    private readonly now: () => number,
    private readonly bounds: GrowthBounds = UNBOUNDED,
  ) {}

  setPolicy(policy: ScalingPolicy): void {
    this.policy = policy;
  }

  /** Starts one instance if none runs (so a broken module fails here), then fills up to minInstances. */
  async warmUp(): Promise<{ startupMs: number }> {
    const first = this.instances[0] ?? (await this.spawn());
    for (let n = this.instances.length + this.starting; n < this.policy.minInstances; n++)
      void this.spawn().catch(() => undefined);
    return { startupMs: first.startupMs };
  }

  /** Lends the least busy instance; see the file comment for when instances are added. */
  acquire(): Promise<Lease> {
    return Promise.resolve(this.lend());
  }

  /** What acquire() does, with a lease that is there now given as it is rather than in a promise (the gateway's path). */
  lend(client?: Client): Lease | Promise<Lease> {
    if (this.closed) return Promise.reject(new Error('the revision was retired'));
    let best: Instance | undefined;
    for (const i of this.instances) if (!best || i.inFlight < best.inFlight) best = i;
    if (best && best.inFlight < this.policy.targetConcurrency) return this.lease(best, 0);
    if (this.mayGrow(best)) void this.spawn().catch(() => undefined);
    // Busy but running: serve now rather than queue behind a start.
    if (best) return this.lease(best, 0);
    // Nothing runs yet: wait for the start, unless as many wait as the starting instances will take
    // (clients that left while waiting do not count).
    const most = this.policy.targetConcurrency * Math.max(1, this.starting);
    if (this.waiters.length >= most) this.dropGone();
    if (this.waiters.length >= most) return Promise.reject(new PoolBusyError());
    return new Promise((resolve, reject) =>
      this.waiters.push({ since: this.now(), client, resolve, reject }),
    );
  }

  /** Forgets the waiters whose clients left; their promises reject (nobody waits on them any more). */
  private dropGone(): void {
    if (!this.waiters.some(gone)) return;
    const left = this.waiters.filter(gone);
    this.waiters = this.waiters.filter((w) => !gone(w));
    for (const w of left) w.reject(new Error('the client went away'));
  }

  /** Whether one more instance may start (see the file comment); `leastBusy`: the one requests go to, if any runs. */
  private mayGrow(leastBusy: Instance | undefined): boolean {
    const total = this.instances.length + this.starting;
    if (total >= this.policy.maxInstances) return false;
    // The first instance always starts (a cold start).
    if (!leastBusy && this.starting === 0) return true;
    if (total >= Math.max(1, this.bounds.maxByCores)) return false;
    if (this.bounds.cpuAvailable()) return true;
    // The CPU is saturated: another instance would only take CPU from the requests being served
    // (measured: a second one started in a burst kept a one-core node 30 % below its peak for 20 s
    // after it). Only a stalled instance gets a sibling: one busy for STALLED_MS without finishing
    // a request (stuck in a loop until its CPU limit stops it, or serving only slow requests).
    if (total >= 2 || !leastBusy) return false;
    return this.now() - Math.max(leastBusy.lastUsed, leastBusy.busySince) > STALLED_MS;
  }

  /** Requests the revision's instances are serving. */
  inFlight(): number {
    return this.instances.reduce((n, i) => n + i.inFlight, 0);
  }

  stats(): { instances: number; starting: number; inFlight: number; coldStarts: number[] } {
    return {
      instances: this.instances.length,
      starting: this.starting,
      inFlight: this.inFlight(),
      coldStarts: [...this.coldStarts],
    };
  }

  /** Forgets an instance (it died or failed); `stop` also asks the sandbox to end it. */
  remove(id: string, stop: boolean): void {
    const i = this.instances.findIndex((x) => x.id === id);
    if (i === -1) return;
    this.instances.splice(i, 1);
    if (stop) void this.stop(id).catch(() => undefined);
  }

  /** Stops instances idle for longer than idleSeconds, keeping minInstances. */
  reap(): void {
    const now = this.now();
    const idleMs = this.policy.idleSeconds * 1000;
    const isIdle = (i: Instance) =>
      i.inFlight === 0 && now - i.lastUsed > (i.served === 0 ? Math.min(idleMs, UNUSED_IDLE_MS) : idleMs);
    const idle = this.instances.filter(isIdle).sort((a, b) => a.lastUsed - b.lastUsed);
    let surplus = this.instances.length - this.policy.minInstances;
    for (const i of idle) {
      if (surplus-- <= 0) break;
      this.remove(i.id, true);
    }
  }

  /** Stops every instance; waiting requests are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error('the revision was retired'));
    const all = this.instances.splice(0);
    await Promise.all(all.map((i) => this.stop(i.id).catch(() => undefined)));
  }

  private lease(instance: Instance, waitedMs: number): Lease {
    if (instance.inFlight === 0) instance.busySince = this.now();
    instance.inFlight++;
    instance.served++;
    return new PoolLease(instance, waitedMs, this.now);
  }

  /** Starts one instance, then hands it to the requests waiting for one. */
  private async spawn(): Promise<Instance> {
    this.starting++;
    let started: Awaited<ReturnType<StartFn>>;
    try {
      started = await this.start(this);
    } catch (err) {
      this.starting--;
      if (this.instances.length === 0 && this.starting === 0)
        for (const w of this.waiters.splice(0)) w.reject(err as Error);
      throw err;
    }
    this.starting--;
    const instance: Instance = {
      ...started,
      inFlight: 0,
      lastUsed: this.now(),
      busySince: this.now(),
      served: 0,
    };
    if (this.closed) {
      await this.stop(instance.id).catch(() => undefined);
      throw new Error('the revision was retired');
    }
    this.instances.push(instance);
    this.dropGone();
    const now = this.now();
    for (const w of this.waiters.splice(0)) {
      const waited = Math.max(1, now - w.since);
      this.coldStarts.push(waited);
      w.resolve(this.lease(instance, waited));
    }
    if (this.coldStarts.length > COLD_SAMPLES)
      this.coldStarts.splice(0, this.coldStarts.length - COLD_SAMPLES);
    return instance;
  }
}
