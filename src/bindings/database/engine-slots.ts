/**
 * How many embedded Database engines a node runs at once, and whose. Each engine is a PGlite worker
 * thread of the supervisor (hundreds of MiB, and the supervisor's CPU), so their number is bounded
 * (`KYLIX_DATABASE_ENGINES`, default 8): an engine starts only in a free slot; without one, an idle
 * engine is closed to make one (the least recently used; the namespace's own while it is past its
 * share); failing that, the start waits up to WAIT_MS for an engine to finish its work, then fails
 * with ERR_OVERLOADED. Before, only idle engines were closed to make room, and a start never
 * waited: one function keeping 50 Databases busy at once ran 50 engines in the supervisor.
 *
 * While more than one namespace holds or wants engines, one namespace holds at most half the slots,
 * so one tenant's busy Databases leave room for everyone else's.
 */
import { KylixError } from '../../errors.js';

/** How long a start waits for a slot before it fails. */
const WAIT_MS = 10_000;

/** Closes one idle engine (of `namespace`, when given); false if there was none. */
export type CloseIdle = (namespace: string | undefined) => Promise<boolean>;

/** See the file comment. */
export class EngineSlots {
  private total = 0;
  private readonly held = new Map<string, number>();
  /** Starts waiting for a slot, by namespace. */
  private readonly wanting = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly max: number,
    private readonly closeIdle: CloseIdle,
    private readonly waitMs = WAIT_MS,
  ) {}

  /** The engines one namespace may hold while others hold or want some. */
  get share(): number {
    return Math.max(1, Math.floor(this.max / 2));
  }

  /** Takes a slot for an engine of `namespace`; call the returned function once the engine is gone. */
  async acquire(namespace: string): Promise<() => void> {
    const deadline = Date.now() + this.waitMs;
    this.wanting.set(namespace, (this.wanting.get(namespace) ?? 0) + 1);
    try {
      for (;;) {
        const pastShare = this.pastShare(namespace);
        if (!pastShare && this.total < this.max) return this.take(namespace);
        // Make room: the namespace's own idle engine while it is past its share, else any.
        if (await this.closeIdle(pastShare ? namespace : undefined)) continue;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new KylixError(
            'ERR_OVERLOADED',
            pastShare
              ? `Namespace "${namespace}" already has ${this.held.get(namespace) ?? 0} embedded database engines busy on this node, its share while other namespaces use theirs; retry when its other Database calls have finished.`
              : `All ${this.max} embedded database engines on this node are busy; retry, or raise KYLIX_DATABASE_ENGINES (each engine is a PGlite worker of several hundred MiB) or use PostgreSQL (KYLIX_POSTGRES_URL).`,
          );
        await this.changed(left);
      }
    } finally {
      const n = (this.wanting.get(namespace) ?? 1) - 1;
      if (n > 0) this.wanting.set(namespace, n);
      else this.wanting.delete(namespace);
    }
  }

  /** An engine finished its work (it may be closed now): starts waiting for a slot look again. */
  wake(): void {
    for (const w of this.waiters) w();
  }

  private take(namespace: string): () => void {
    this.total++;
    this.held.set(namespace, (this.held.get(namespace) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.held.get(namespace) ?? 1) - 1;
      if (n > 0) this.held.set(namespace, n);
      else this.held.delete(namespace);
      this.wake();
    };
  }

  /** Whether `namespace` holds its share while another namespace holds or wants an engine. */
  private pastShare(namespace: string): boolean {
    if ((this.held.get(namespace) ?? 0) < this.share) return false;
    for (const ns of this.held.keys()) if (ns !== namespace) return true;
    for (const ns of this.wanting.keys()) if (ns !== namespace) return true;
    return false;
  }

  /** Resolves when an engine is released or goes idle, or after `ms`. */
  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}
