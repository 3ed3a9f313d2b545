/**
 * A reconciler's queue of keys ("namespace/name"), as Kubernetes controllers have (client-go's
 * rate-limited workqueue):
 * - a key added again while it waits is queued once (deduplicated);
 * - a key is never reconciled twice at once: added while it runs, it runs once more afterwards;
 * - a reconcile that throws is retried with exponential backoff per key (0.5 s, 1 s, … 30 s by
 *   default), since on a fleet a failure is often another node's write in between or a backend
 *   that is briefly down; a success forgets the key's failures and cancels its pending retry.
 * Retries wait on the injected clock, so tests advance time instead of sleeping.
 */
import { type BackoffOptions, backoffDelay, type CancelTimer, type Clock, systemClock } from './clock.js';

/** Told of each reconcile: its duration in seconds, and whether it failed. */
export type ReconcileObserver = (seconds: number, failed: boolean) => void;

/** Told of each reconcile of a named controller ("function", "secret", "resource"), for metrics. */
export type ControllerObserver = (controller: string, seconds: number, failed: boolean) => void;

/** Options of a WorkQueue. */
export interface WorkQueueOptions {
  /** Reconciles one key; a rejection schedules a retry. */
  work: (key: string) => Promise<void>;
  /** Told of each failure, with the retry's delay. */
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  /** Told how long each reconcile took and whether it failed (metrics). */
  observe?: ReconcileObserver;
  /** How many keys run at once (default: no limit; still one run per key). */
  concurrency?: number;
  /** Per-key retry delays (default 500 ms doubling to 30 s). */
  backoff?: BackoffOptions;
  clock?: Clock;
}

/** The default retry delays: 0.5 s, 1 s, 2 s, … capped at 30 s. */
export const RETRY_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** See the file comment. */
export class WorkQueue {
  /** Keys waiting for a worker, in order; a Set, so a key waits at most once. */
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while they were processing: they run again when the current run ends. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Map<string, CancelTimer>();
  private readonly idle = new Set<() => void>();
  private readonly clock: Clock;
  private readonly backoff: BackoffOptions;
  private readonly concurrency: number;
  private scheduled = false;
  private stopped = false;

  constructor(private readonly options: WorkQueueOptions) {
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? RETRY_BACKOFF;
    this.concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
  }

  /** Queues `key` (once, however often it is added before a worker takes it). */
  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.queued.add(key);
    // Workers start on the next microtask, so adds made together are deduplicated first.
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  /** Adds `key` after the backoff its failures so far call for (what a failed reconcile does). */
  addRateLimited(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = backoffDelay(failures, this.backoff);
    this.retryTimers.get(key)?.();
    this.retryTimers.set(
      key,
      this.clock.after(delay, () => {
        this.retryTimers.delete(key);
        this.add(key);
      }),
    );
    return delay;
  }

  /** Forgets the key's failures and cancels its pending retry (what a successful reconcile does). */
  forget(key: string): void {
    this.failures.delete(key);
    this.retryTimers.get(key)?.();
    this.retryTimers.delete(key);
  }

  /** How many times in a row the key's reconcile has failed. */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** How many keys are queued or running (retries waiting on their timer do not count). */
  get length(): number {
    return this.queued.size + this.processing.size;
  }

  /** Resolves when nothing is queued or running (retries waiting on their timer do not count). */
  settled(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Takes no more work and cancels pending retries; runs under way finish. */
  stop(): void {
    this.stopped = true;
    this.queued.clear();
    this.dirty.clear();
    for (const cancel of this.retryTimers.values()) cancel();
    this.retryTimers.clear();
    if (this.processing.size === 0) this.wakeIdle();
  }

  /** Starts a worker for each queued key, up to the concurrency. */
  private pump(): void {
    for (const key of this.queued) {
      if (this.processing.size >= this.concurrency) return;
      this.queued.delete(key);
      this.processing.add(key);
      void this.process(key);
    }
    if (this.length === 0) this.wakeIdle();
  }

  /** 1. reconcile, 2. forget or schedule a retry, 3. run again if added meanwhile, 4. next key. */
  private async process(key: string): Promise<void> {
    do {
      this.dirty.delete(key);
      const started = performance.now();
      try {
        await this.options.work(key);
        this.options.observe?.((performance.now() - started) / 1000, false);
        this.forget(key);
      } catch (err) {
        this.options.observe?.((performance.now() - started) / 1000, true);
        if (this.stopped) break;
        const delay = this.addRateLimited(key);
        this.options.onError?.(key, err, delay);
      }
    } while (this.dirty.has(key) && !this.stopped);
    this.processing.delete(key);
    this.pump();
  }

  private wakeIdle(): void {
    for (const resolve of this.idle) resolve();
    this.idle.clear();
  }
}
