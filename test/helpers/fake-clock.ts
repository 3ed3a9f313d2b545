/**
 * A clock for informers and work queues whose time moves only when a test says so: timers fire
 * from advance(), and `delays` records every delay asked for, so backoff is asserted, not slept.
 */
import type { Clock } from '../../src/control-plane/clock.js';

/** See the file comment. */
export class FakeClock implements Clock {
  private time = 0;
  private timers: { at: number; fn: () => void }[] = [];
  /** Every delay passed to after(), in order. */
  readonly delays: number[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    this.delays.push(ms);
    const timer = { at: this.time + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time on by `ms`, firing due timers in order and letting the work they start run. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.at;
      next.fn();
      await flush();
    }
    this.time = end;
    await flush();
  }
}

/** Lets queued promise callbacks run (a few macrotask turns, no real delay). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
