/**
 * The server's own log of its backends' outages. A binding call that fails with
 * ERR_BACKEND_UNAVAILABLE has its kind's backend asked for its health(); only if that fails too is
 * the backend marked down (one call's own failure — a tenant's unserialisable argument, its own
 * PostgreSQL session ended, the disk reserve — is not an outage of a backend every tenant shares).
 * The outage is logged at once (a warning naming the backend and the call's error), later failures
 * are only counted, and while it is down the backend's health() is asked every RECHECK_MS; the
 * first healthy answer logs that it is back, how long it was down and how many calls failed
 * meanwhile. A kind with no provider of its own is not watched. Before, an outage showed only in each
 * function's own log and in the binding error metrics: an operator reading the node's log saw
 * nothing of a Redis, NATS, PostgreSQL or S3 that went away.
 *
 * Cost while everything is up: one derived promise per binding call (its rejection is the signal).
 */
import { KylixError } from '../errors.js';
import { healthOf, type Provider } from './provider.js';

/** How often a backend that is down is asked for its health. */
const RECHECK_MS = 5000;

/** Writes one line of the node's log. */
export type OutageLog = (message: string, level: 'info' | 'warn', fields: Record<string, unknown>) => void;

interface Outage {
  since: number;
  failed: number;
  timer: NodeJS.Timeout;
}

/** See the file comment. */
export class BackendOutages {
  private readonly down = new Map<string, Outage>();
  /** Kinds whose health is being asked after a failed call, with the failures seen meanwhile. */
  private readonly checking = new Map<string, number>();
  private closed = false;

  constructor(
    /** The provider of a binding kind ("keyValue" → its provider), or undefined for a kind without one. */
    private readonly provider: (kind: string) => Promise<Provider> | undefined,
    private readonly log: OutageLog,
    private readonly recheckMs = RECHECK_MS,
  ) {}

  /** Passes a binding call's result through, noting the backend down if the call says so. */
  watch<T>(kind: string, call: Promise<T>): Promise<T> {
    return call.catch((err: unknown) => {
      if (err instanceof KylixError && err.code === 'ERR_BACKEND_UNAVAILABLE') this.failed(kind, err);
      throw err;
    });
  }

  /** Kinds whose backend is down now. */
  get downKinds(): string[] {
    return [...this.down.keys()];
  }

  close(): void {
    this.closed = true;
    for (const o of this.down.values()) clearInterval(o.timer);
    this.down.clear();
  }

  private failed(kind: string, err: KylixError): void {
    const known = this.down.get(kind);
    if (known) {
      known.failed++;
      return;
    }
    const pending = this.checking.get(kind);
    if (pending !== undefined) {
      this.checking.set(kind, pending + 1);
      return;
    }
    const provider = this.provider(kind);
    if (!provider) return;
    this.checking.set(kind, 1);
    void healthOf(provider).then((health) => {
      const failed = this.checking.get(kind) ?? 1;
      this.checking.delete(kind);
      if (health.ok || this.closed) return;
      const timer = setInterval(() => void this.recheck(kind), this.recheckMs);
      timer.unref();
      this.down.set(kind, { since: Date.now(), failed, timer });
      this.log(
        `${kind} backend unavailable: ${err.message} Binding calls to it fail until it is back; checking every ${this.recheckMs / 1000} s.`,
        'warn',
        { kind, backendDown: true },
      );
    });
  }

  private async recheck(kind: string): Promise<void> {
    const outage = this.down.get(kind);
    const provider = this.provider(kind);
    if (!outage || !provider) return;
    const healthy = (await healthOf(provider)).ok;
    if (!healthy || this.down.get(kind) !== outage) return;
    clearInterval(outage.timer);
    this.down.delete(kind);
    const seconds = Math.round((Date.now() - outage.since) / 100) / 10;
    this.log(
      `${kind} backend available again after ${seconds} s; ${outage.failed} binding call(s) failed meanwhile.`,
      'info',
      { kind, backendDown: false, downSeconds: seconds, failedCalls: outage.failed },
    );
  }
}
