/**
 * Time for the informers, work queues and sandbox liveness checks, injected so their tests advance
 * a fake clock instead of sleeping (as kubernetes-client's informers take a delay function), and the one exponential
 * backoff they share.
 */

/** Cancels a timer set with Clock.after. */
export type CancelTimer = () => void;

/** The clock the control loops run on; the system clock outside tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. Timers never keep the process alive. */
  after(ms: number, fn: () => void): CancelTimer;
}

/** The real clock: Date.now and unref'd timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** How delays grow after consecutive failures. */
export interface BackoffOptions {
  /** The delay after the first failure (ms). */
  initialMs: number;
  /** No delay is longer than this (ms), jitter included. */
  maxMs: number;
  /** Each further failure multiplies the delay by this (default 2). */
  factor?: number;
  /**
   * Spread, as a fraction of the delay: 0.2 picks a delay up to 20% shorter, so nodes that failed
   * together (a store restart) do not come back together. Default 0.
   */
  jitter?: number;
  /** A number in [0, 1); Math.random outside tests. */
  random?: () => number;
}

/** The delay before attempt number `failures` + 1, after `failures` (≥ 1) consecutive failures. */
export function backoffDelay(failures: number, o: BackoffOptions): number {
  const base = Math.min(o.maxMs, o.initialMs * (o.factor ?? 2) ** Math.max(0, failures - 1));
  const jitter = o.jitter ?? 0;
  if (jitter <= 0) return base;
  return Math.round(base * (1 - jitter * (o.random ?? Math.random)()));
}
