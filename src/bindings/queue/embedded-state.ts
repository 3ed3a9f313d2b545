/**
 * One embedded queue in memory: its messages, the ready heap (deliverable messages, oldest first),
 * the timers heap (delays and leases, by when they end) and the receivers waiting for work. It
 * does no I/O: the provider (embedded.ts) journals every change it makes here.
 */
import { Waiters } from '../waiters.js';
import { Heap } from './heap.js';
import type { Delivery, OutgoingMessage, QueueStats } from './interface.js';

export type ContentType = OutgoingMessage['contentType'];

/** A message as the queue holds it. */
export interface Message {
  id: number;
  ts: number;
  ct: ContentType;
  body: Uint8Array;
  /** Deliverable from (ms since the epoch). */
  at: number;
  /** Deliveries so far. */
  n: number;
  lease?: { id: string; until: number };
  /** Bumped on every change, so stale heap entries are recognised and skipped. */
  v: number;
  /** Not deliverable until its send record is on disk. */
  durable: boolean;
  /** The sender's traceparent, when it had one. */
  tp?: string;
}

/** What a message costs in memory besides its body: the object, its map and heap entries. */
const MESSAGE_OVERHEAD = 200;

/** The memory a message of `bodyBytes` (sent with `traceparent`) takes. */
export const messageBytes = (bodyBytes: number, traceparent?: string) =>
  bodyBytes + (traceparent?.length ?? 0) + MESSAGE_OVERHEAD;

const sizeOfMessage = (m: Message) => messageBytes(m.body.byteLength, m.tp);

/** See the file comment. */
export class QueueState {
  /** Its messages; add() and remove() change it, so `bytes` stays right. */
  readonly messages = new Map<number, Message>();
  /** The memory its messages take (sizeOfMessage). */
  bytes = 0;
  private readonly ready = new Heap<{ id: number; v: number }>((a, b) => a.id - b.id);
  private readonly timers = new Heap<{ at: number; id: number; v: number }>((a, b) => a.at - b.at);
  private readonly waiters = new Waiters();

  /** Holds `m` (replacing a message of its id); returns how many bytes more the queue holds. */
  add(m: Message): number {
    const old = this.messages.get(m.id);
    this.messages.set(m.id, m);
    const delta = sizeOfMessage(m) - (old ? sizeOfMessage(old) : 0);
    this.bytes += delta;
    return delta;
  }

  /** Drops message `id`; returns how many bytes fewer the queue holds (0: it did not hold it). */
  remove(id: number): number {
    const m = this.messages.get(id);
    if (!m) return 0;
    this.messages.delete(id);
    this.bytes -= sizeOfMessage(m);
    return sizeOfMessage(m);
  }

  /** Puts a message where it belongs: ready now, or a timer until its delay or lease ends. */
  schedule(m: Message, now: number): void {
    if (m.lease) this.timers.push({ at: m.lease.until, id: m.id, v: m.v });
    else if (m.at > now) this.timers.push({ at: m.at, id: m.id, v: m.v });
    else {
      this.ready.push({ id: m.id, v: m.v });
      this.wakeAll();
    }
  }

  /** Moves a leased message's lease end to `until` (a message not leased is left alone). */
  extendLease(m: Message, until: number): void {
    if (!m.lease) return;
    m.lease.until = until;
    m.v++;
    this.timers.push({ at: until, id: m.id, v: m.v });
  }

  /**
   * Leases up to `max` ready messages; `delivered` is told of each (the provider journals the
   * delivery count lazily: losing it costs a count, not a message).
   */
  take(max: number, leaseMs: number, now: number, delivered: (m: Message) => void): Delivery[] {
    this.promote(now);
    const out: Delivery[] = [];
    while (out.length < max) {
      const r = this.ready.pop();
      if (!r) break;
      const m = this.messages.get(r.id);
      if (!m || m.v !== r.v || m.lease || !m.durable) continue;
      m.n++;
      m.v++;
      m.lease = { id: `${m.id}.${m.n}`, until: now + leaseMs };
      this.timers.push({ at: m.lease.until, id: m.id, v: m.v });
      delivered(m);
      out.push({
        leaseId: m.lease.id,
        id: String(m.id),
        body: m.body,
        contentType: m.ct,
        attempts: m.n,
        timestamp: m.ts,
        ...(m.tp ? { traceparent: m.tp } : {}),
      });
    }
    return out;
  }

  /** The message a lease id names, if that lease is still the message's current one. */
  leased(leaseId: string): Message | undefined {
    const id = messageIdOf(leaseId);
    const m = id === undefined ? undefined : this.messages.get(id);
    return m?.lease?.id === leaseId ? m : undefined;
  }

  stats(now: number): QueueStats {
    const stats: QueueStats = { ready: 0, inFlight: 0, delayed: 0 };
    for (const m of this.messages.values()) {
      if (m.lease && m.lease.until > now) stats.inFlight++;
      else if (!m.lease && m.at > now) stats.delayed++;
      else stats.ready++;
    }
    return stats;
  }

  /** Resolves when a message may have become deliverable, or at the deadline. */
  waitForWork(deadline: number, now: number): Promise<void> {
    const next = this.timers.peek()?.at ?? Number.POSITIVE_INFINITY;
    return this.waiters.wait(Math.max(0, Math.min(deadline, next) - now));
  }

  /** Wakes every receiver waiting (a message is ready, or the queue is gone). */
  wakeAll(): void {
    this.waiters.wakeAll();
  }

  /** Moves messages whose delay or lease has ended to the ready heap. */
  private promote(now: number): void {
    for (let t = this.timers.peek(); t && t.at <= now; t = this.timers.peek()) {
      this.timers.pop();
      const m = this.messages.get(t.id);
      if (!m || m.v !== t.v) continue;
      if (m.lease) m.lease = undefined;
      m.v++;
      this.ready.push({ id: m.id, v: m.v });
    }
  }
}

/** The message id in a lease id ("<id>.<delivery>"). */
export function messageIdOf(leaseId: string): number | undefined {
  const id = Number(leaseId.split('.')[0]);
  return Number.isSafeInteger(id) ? id : undefined;
}
