/**
 * How many embedded Database engines a node runs at once, and whose. Each engine is a PGlite worker
 * thread of the supervisor (hundreds of MiB, and the supervisor's CPU), so their number is bounded
 * (`KYLIX_DATABASE_ENGINES`, default 8). An engine starts only in a free slot; without one, an idle
 * engine is closed to make one (the least recently used, a namespace's past its share first);
 * failing that, the start waits up to WAIT_MS for an engine to finish its work, then fails with
 * ERR_OVERLOADED. Before, only idle engines were closed to make room, and a start never waited:
 * one function keeping 50 Databases busy at once ran 50 engines in the supervisor.
 *
 * Namespaces share fairly: one namespace holds at most half the slots (its share), so another
 * always finds room; and while a namespace waits with every slot busy, one engine of a namespace
 * holding its share is drained — it takes no new work (calls wait for it to close and restart it),
 * finishes what it has, and is closed — so several namespaces at their share cannot keep a third
 * out by keeping their engines busy.
 */
import { KylixError } from '../../errors.js';
import { Waiters } from '../waiters.js';

/** How long a start waits for a slot before it fails. */
const WAIT_MS = 10_000;

/** What the slots ask of the provider that runs the engines. */
export interface EngineHost {
  /**
   * Closes one idle engine — of `only` when given, else the least recently used, `prefer`'s first —
   * and resolves once its slot is released; false if there was none.
   */
  closeIdle(only: string | undefined, prefer: string | undefined): Promise<boolean>;
  /** Drains one busy engine of `namespace` (at most one at a time per namespace); false if it has none. */
  drain(namespace: string): boolean;
}

/** See the file comment. */
export class EngineSlots {
  private total = 0;
  private readonly held = new Map<string, number>();
  private readonly waiters = new Waiters();
  /** Bumped by every release and every engine that goes idle: a waiter that saw it change looks again. */
  private generation = 0;
  private closed = false;

  constructor(
    readonly max: number,
    private readonly host: EngineHost,
    private readonly waitMs = WAIT_MS,
  ) {}

  /** The engines one namespace may hold. */
  get share(): number {
    return Math.max(1, Math.floor(this.max / 2));
  }

  /** Engines running or starting (for tests and metrics). */
  get inUse(): number {
    return this.total;
  }

  /** Takes a slot for an engine of `namespace`; call the returned function once the engine is gone. */
  async acquire(namespace: string): Promise<() => void> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      if (this.closed) throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded database is closed.');
      const seen = this.generation;
      const pastShare = this.pastShare(namespace);
      if (!pastShare && this.total < this.max) return this.take(namespace);
      // Make room: the namespace's own idle engine while it holds its share, else any (one of a
      // namespace holding its share first).
      if (await this.host.closeIdle(pastShare ? namespace : undefined, this.greediest(namespace))) continue;
      // Every engine is busy: one of a namespace holding its share stops taking work for this one.
      if (!pastShare) {
        const greedy = this.greediest(namespace);
        if (greedy) this.host.drain(greedy);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw this.overloaded(namespace, pastShare);
      await this.changed(seen, left);
    }
  }

  /** The provider is closing: starts waiting for a slot fail now. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** An engine finished its work (it may be closed now): starts waiting for a slot look again. */
  wake(): void {
    this.generation++;
    this.waiters.wakeAll();
  }

  private take(namespace: string): () => void {
    this.total++;
    count(this.held, namespace, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      count(this.held, namespace, -1);
      this.wake();
    };
  }

  /**
   * Whether `namespace` holds its share: then it starts no more engines (it closes or waits for its
   * own), whoever else is there. Not only while another namespace waits: work already running
   * cannot be drained (a migration may run 5 minutes), so a namespace alone that took every slot
   * could keep one that comes later out for as long as its work ran.
   */
  private pastShare(namespace: string): boolean {
    return (this.held.get(namespace) ?? 0) >= this.share;
  }

  /** The namespace other than `namespace` holding the most engines, if it holds its share or more. */
  private greediest(namespace: string): string | undefined {
    let most: string | undefined;
    let count = this.share - 1;
    for (const [ns, n] of this.held)
      if (ns !== namespace && n > count) {
        most = ns;
        count = n;
      }
    return most;
  }

  private overloaded(namespace: string, pastShare: boolean): KylixError {
    return new KylixError(
      'ERR_OVERLOADED',
      pastShare
        ? `Namespace "${namespace}" already has ${this.held.get(namespace) ?? 0} embedded database engines busy on this node, its share of the ${this.max}; retry when its other Database calls have finished.`
        : `All ${this.max} embedded database engines on this node are busy (statements or open transactions; a transaction held open while calling another Database can wait on itself); retry, or raise KYLIX_DATABASE_ENGINES (each engine is a PGlite worker of several hundred MiB) or use PostgreSQL (KYLIX_POSTGRES_URL).`,
    );
  }

  /** Resolves when the generation moves past `seen` (at once if it already has), or after `ms`. */
  private changed(seen: number, ms: number): Promise<void> {
    if (this.generation !== seen) return Promise.resolve();
    return this.waiters.wait(ms);
  }
}

/** Adds `delta` to `key`'s count, dropping the key at zero (so the map lists only namespaces with some). */
function count(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
