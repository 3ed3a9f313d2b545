/**
 * A controller's queue of reconciles, one key at a time: a key asked for again while it runs is
 * run once more afterwards (never twice at once); a reconcile that throws is retried with backoff
 * (0.5 s, 1 s, … 30 s), as Kubernetes controllers requeue, since on a fleet a failure is often
 * another node's write in between or a backend that is briefly down.
 */

/** See the file comment. */
export class WorkQueue {
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly idle = new Set<() => void>();
  private readonly retries = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
  private stopped = false;

  constructor(
    private readonly work: (key: string) => Promise<void>,
    private readonly onError: (key: string, err: unknown) => void,
  ) {}

  /** Runs `work(key)` now, or once more after the run under way. */
  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    const run = async (): Promise<void> => {
      do {
        this.dirty.delete(key);
        try {
          await this.work(key);
          this.clearRetry(key);
        } catch (err) {
          this.onError(key, err);
          this.retryLater(key);
        }
      } while (this.dirty.has(key) && !this.stopped);
      this.running.delete(key);
      if (this.running.size === 0) {
        for (const r of this.idle) r();
        this.idle.clear();
      }
    };
    this.running.set(key, run());
  }

  /** Resolves when nothing is queued or running (retries waiting on their timer do not count). */
  settled(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Takes no more work and cancels the retries. */
  stop(): void {
    this.stopped = true;
    for (const { timer } of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  private retryLater(key: string): void {
    const previous = this.retries.get(key);
    if (previous) clearTimeout(previous.timer);
    const attempt = (previous?.attempt ?? 0) + 1;
    const timer = setTimeout(() => this.add(key), Math.min(30_000, 250 * 2 ** attempt));
    timer.unref();
    this.retries.set(key, { attempt, timer });
  }

  private clearRetry(key: string): void {
    const pending = this.retries.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.retries.delete(key);
  }
}
