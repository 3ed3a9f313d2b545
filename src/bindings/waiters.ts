/**
 * Callers waiting for something to change, each until the next wakeAll() or until its time runs
 * out (one timer each, cleared when it is woken). The embedded queue's receivers wait on one for
 * work, and starts of embedded Database engines for a free slot.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  /** Resolves at the next wakeAll(), or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }

  /** Wakes everyone waiting. */
  wakeAll(): void {
    for (const done of this.waiting) done();
  }
}
