/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a
 * node holds the Lease while it renews it; another takes it over only after it has seen the same
 * record unchanged for a whole lease duration (time measured on its own clock, so clocks that
 * disagree between nodes do not matter); every write is conditional on the resourceVersion read,
 * so two candidates cannot both win. A holder that cannot renew steps down when its own lease
 * would have run out, before anyone else can take over. Closing releases the Lease at once.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { LeaderElection } from '../control-plane/store/interface.js';
import { SYSTEM_NAMESPACE } from './bundles.js';
import { isStatus, type KubeClient } from './client.js';

/** Timings of an election (seconds); the defaults are client-go's. */
export interface LeaseTimings {
  /** How long a Lease holds without renewal (default 15). */
  durationSeconds: number;
  /** How often the holder renews and the others try (default 2). */
  retrySeconds: number;
}

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface LeaseObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

/** A Lease's MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

/** See the file comment. */
export class LeaseElection implements LeaderElection {
  /** This node's identity in the Lease (host, process and a random part, so restarts differ). */
  readonly identity = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly path: string;
  private readonly timings: LeaseTimings;
  /** When this node last renewed the Lease successfully (its own clock); 0 when it does not hold it. */
  private renewedAt = 0;
  /** The record last seen, and when this node first saw it so (its own clock). */
  private observed?: { key: string; at: number };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private closed = false;
  private readonly first: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    /** The Lease's name in the installation's namespace. */
    readonly name: string,
    timings: Partial<LeaseTimings> = {},
    /** The installation's namespace (backends.state.namespace; default kylix-system). */
    readonly namespace: string = SYSTEM_NAMESPACE,
  ) {
    this.timings = { durationSeconds: 15, retrySeconds: 2, ...timings };
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`;
    this.first = this.tick();
  }

  /** Resolves once the first attempt to acquire or renew has been made. */
  ready(): Promise<void> {
    return this.first;
  }

  /** Whether this node holds the Lease now (and will for the rest of the duration it last renewed). */
  isLeader(): boolean {
    return this.renewedAt > 0 && Date.now() - this.renewedAt < this.timings.durationSeconds * 1000;
  }

  /** Stops trying, and releases the Lease if this node holds it, so another takes over at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
    if (!this.isLeader()) return;
    this.renewedAt = 0;
    try {
      const lease = await this.client.request<LeaseObject>('GET', this.path);
      if (lease.spec.holderIdentity !== this.identity) return;
      await this.client.request('PUT', this.path, {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1 } },
      });
    } catch {
      // It runs out by itself after its duration.
    }
  }

  /** One attempt, then the next one scheduled. */
  private tick(): Promise<void> {
    this.running = this.attempt()
      .catch(() => {
        // The API server is unreachable or the write lost a race: isLeader() runs out by itself.
      })
      .finally(() => {
        if (this.closed) return;
        this.timer = setTimeout(() => void this.tick(), this.timings.retrySeconds * 1000);
        this.timer.unref();
      });
    return this.running;
  }

  /** 1. read the Lease (create it when missing), 2. renew it if ours, 3. take it if it expired. */
  private async attempt(): Promise<void> {
    const now = Date.now();
    let lease: LeaseObject;
    try {
      lease = await this.client.request<LeaseObject>('GET', this.path);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await this.create(now);
      return;
    }
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ''}/${spec.renewTime ?? ''}/${lease.metadata.resourceVersion}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const mine = spec.holderIdentity === this.identity;
    const duration = (spec.leaseDurationSeconds ?? this.timings.durationSeconds) * 1000;
    const free = !spec.holderIdentity || now - this.observed.at >= duration;
    if (!mine && !free) {
      this.renewedAt = 0;
      return;
    }
    const next: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.timings.durationSeconds,
      acquireTime: mine ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    // Conditional on the version read: of two nodes taking an expired Lease, one gets Conflict.
    await this.client.request('PUT', this.path, { body: { ...lease, spec: next } });
    this.renewedAt = now;
  }

  private async create(now: number): Promise<void> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'kylix' },
      },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.timings.durationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      },
    };
    const post = () =>
      this.client.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`, {
        body,
      });
    try {
      await post();
    } catch (err) {
      if (isStatus(err, 409)) return; // another node created it first: it holds it
      if (!isStatus(err, 404)) throw err;
      await this.client.ensureNamespace(this.namespace);
      await post();
    }
    this.renewedAt = now;
  }
}
