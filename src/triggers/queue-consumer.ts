/**
 * Queue triggers: for each Function with spec.triggers.queue, a loop receives leased batches and
 * hands them to the function's queue(batch) handler. As on Workers, a message the handler neither
 * acks nor retries is acked when the handler returns and retried when it throws. Retries back off
 * exponentially; a message that failed maxRetries + 1 deliveries moves to the dead-letter queue.
 * Leases are extended while the handler runs, so a slow handler is never redelivered under itself.
 *
 * Two things keep a message from being lost to what is not its handler's fault:
 * - a batch goes to the handler in parts of at most MAX_DELIVERY_BYTES of bodies (a batch of large
 *   messages would not fit one event frame, and the instance would be ended for it);
 * - while a backend of the node is down (bindings/outages.ts), consumers wait instead of receiving,
 *   and a message that failed meanwhile is retried, not dead-lettered or dropped: an outage of the
 *   platform's own backends does not use up a message's deliveries.
 */
import { scopedKey } from '../bindings/identity.js';
import type { ResourceRef } from '../bindings/provider.js';
import type { Delivery, QueueProvider } from '../bindings/queue/interface.js';

/** A function consuming a queue. */
export interface ConsumerTarget {
  namespace: string;
  functionName: string;
  queue: string;
  batchSize: number;
  maxRetries: number;
  deadLetter?: string;
}

/** What the handler decided, per lease id. */
export interface BatchOutcome {
  acked: string[];
  retried: { leaseId: string; delaySeconds?: number }[];
  /** The handler threw: what it did not decide is retried. */
  failed: boolean;
  error?: string;
}

/** Runs the function's queue handler on a batch. */
export type DeliverFn = (target: ConsumerTarget, batch: Delivery[]) => Promise<BatchOutcome>;
/** Writes a note to the function's log. */
export type ConsumerNote = (
  target: ConsumerTarget,
  level: 'info' | 'warn' | 'error',
  message: string,
) => void;

/** What became of one delivered message (for metrics). */
export type DeliveryResult = 'acked' | 'retried' | 'dead_lettered' | 'dropped';
/** Told what became of each delivered message. */
export type ConsumerSettled = (target: ConsumerTarget, result: DeliveryResult) => void;

/**
 * The most message body bytes one delivery to the handler carries: a batch past it is delivered in
 * parts. A message is at most 1 MB, sent base64-encoded in the event frame, which carries 64 MiB.
 */
export const MAX_DELIVERY_BYTES = 16 * 2 ** 20;

/** The backends of the node that are down now (bindings/outages.ts); none when not told. */
export type BackendsDown = () => readonly string[];

/** `batch` in parts of at most `maxBytes` of bodies, each holding at least one message. */
export function deliveryParts(batch: Delivery[], maxBytes = MAX_DELIVERY_BYTES): Delivery[][] {
  const parts: Delivery[][] = [];
  let part: Delivery[] = [];
  let bytes = 0;
  for (const d of batch) {
    if (part.length > 0 && bytes + d.body.byteLength > maxBytes) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(d);
    bytes += d.body.byteLength;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/** Tunables; the defaults suit production, tests shorten them. */
export interface ConsumerOptions {
  leaseMs: number;
  waitMs: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
}

const DEFAULTS: ConsumerOptions = {
  leaseMs: 30_000,
  waitMs: 1000,
  backoffBaseSeconds: 1,
  backoffMaxSeconds: 300,
};

/** The delay before delivery number `attempts + 1`: base × 2^(attempts − 1), capped. */
export function backoffSeconds(attempts: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attempts - 1));
}

interface Loop {
  target: ConsumerTarget;
  stopped: boolean;
  done: Promise<void>;
}

/** See the file comment. */
export class QueueConsumer {
  private readonly loops = new Map<string, Loop>();
  private readonly options: ConsumerOptions;

  constructor(
    private readonly provider: () => Promise<QueueProvider>,
    private readonly deliver: DeliverFn,
    private readonly note: ConsumerNote,
    options: Partial<ConsumerOptions> = {},
    private readonly settled: ConsumerSettled = () => {},
    private readonly backendsDown: BackendsDown = () => [],
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Starts (or restarts with new settings) a function's consumer. */
  set(target: ConsumerTarget): void {
    const key = scopedKey(target.namespace, target.functionName);
    const existing = this.loops.get(key);
    if (existing && JSON.stringify(existing.target) === JSON.stringify(target)) return;
    if (existing) existing.stopped = true;
    const loop: Loop = { target, stopped: false, done: Promise.resolve() };
    loop.done = this.run(loop);
    this.loops.set(key, loop);
  }

  /** Stops a function's consumer (its leased messages return to the queue when their leases end). */
  remove(namespace: string, functionName: string): void {
    const key = scopedKey(namespace, functionName);
    const loop = this.loops.get(key);
    if (loop) loop.stopped = true;
    this.loops.delete(key);
  }

  /** Stops every consumer and waits for the batches in hand. */
  async close(): Promise<void> {
    const all = [...this.loops.values()];
    this.loops.clear();
    for (const l of all) l.stopped = true;
    await Promise.all(all.map((l) => l.done));
  }

  private async run(loop: Loop): Promise<void> {
    const { target } = loop;
    const ref: ResourceRef = { namespace: target.namespace, name: target.queue };
    let paused = false;
    while (!loop.stopped) {
      try {
        const down = this.backendsDown();
        if (down.length > 0) {
          if (!paused)
            this.note(
              target,
              'warn',
              `Queue consumer for ${target.queue} paused: the node's ${down.join(', ')} backend is unavailable; its messages wait in the queue.`,
            );
          paused = true;
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (paused)
          this.note(target, 'info', `Queue consumer for ${target.queue} resumed: its backends are back.`);
        paused = false;
        const queue = await this.provider();
        const batch = await queue.receive(ref, {
          max: target.batchSize,
          leaseMs: this.options.leaseMs,
          waitMs: this.options.waitMs,
        });
        if (loop.stopped || batch.length === 0) continue;
        await this.handle(queue, ref, target, batch);
      } catch (err) {
        this.note(
          target,
          'error',
          `Queue consumer for ${target.queue}: ${err instanceof Error ? err.message : String(err)}; retrying in 1 s.`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** 1. keep leases alive, 2. run the handler, 3. ack / retry / dead-letter each message. */
  private async handle(
    queue: QueueProvider,
    ref: ResourceRef,
    target: ConsumerTarget,
    batch: Delivery[],
  ): Promise<void> {
    const leaseIds = batch.map((d) => d.leaseId);
    const heartbeat = setInterval(
      () => void queue.extend(ref, leaseIds, this.options.leaseMs).catch(() => undefined),
      Math.max(10, this.options.leaseMs / 3),
    );
    try {
      for (const part of deliveryParts(batch)) await this.handlePart(queue, ref, target, part);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Runs the handler on one part of a batch and settles each of its messages. */
  private async handlePart(
    queue: QueueProvider,
    ref: ResourceRef,
    target: ConsumerTarget,
    batch: Delivery[],
  ): Promise<void> {
    let outcome: BatchOutcome;
    try {
      outcome = await this.deliver(target, batch);
    } catch (err) {
      outcome = {
        acked: [],
        retried: [],
        failed: true,
        error: err instanceof Error ? err.message : String(err),
      };
    }
    if (outcome.failed)
      this.note(
        target,
        'warn',
        `queue() failed for a batch of ${batch.length}: ${outcome.error ?? 'unknown error'}`,
      );
    const retried = new Map(outcome.retried.map((r) => [r.leaseId, r.delaySeconds]));
    const acked = new Set(outcome.acked);
    const toAck: string[] = [];
    for (const d of batch) {
      const wantsRetry = retried.has(d.leaseId) || (outcome.failed && !acked.has(d.leaseId));
      if (!wantsRetry) {
        toAck.push(d.leaseId);
        this.settled(target, 'acked');
        continue;
      }
      // Past its retries, unless a backend of the node is down: then it failed for the platform.
      if (d.attempts > target.maxRetries && this.backendsDown().length === 0) {
        await this.deadLetter(queue, target, d);
        toAck.push(d.leaseId);
        this.settled(target, target.deadLetter ? 'dead_lettered' : 'dropped');
        continue;
      }
      this.settled(target, 'retried');
      const delay =
        retried.get(d.leaseId) ??
        backoffSeconds(d.attempts, this.options.backoffBaseSeconds, this.options.backoffMaxSeconds);
      await queue.retry(ref, d.leaseId, delay);
    }
    if (toAck.length > 0) await queue.ack(ref, toAck);
  }

  private async deadLetter(queue: QueueProvider, target: ConsumerTarget, d: Delivery): Promise<void> {
    if (!target.deadLetter) {
      this.note(
        target,
        'error',
        `Message ${d.id} failed ${d.attempts} deliveries and was dropped (no deadLetter queue configured).`,
      );
      return;
    }
    await queue.send({ namespace: target.namespace, name: target.deadLetter }, [
      { body: d.body, contentType: d.contentType, ...(d.traceparent ? { traceparent: d.traceparent } : {}) },
    ]);
    this.note(
      target,
      'warn',
      `Message ${d.id} failed ${d.attempts} deliveries; moved to ${target.deadLetter}.`,
    );
  }
}
