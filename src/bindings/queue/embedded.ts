/**
 * The embedded Queue provider: every queue of the installation in memory, every change in one
 * journal under the data folder (the shared src/storage/journal.ts: `queue.journal`, compacted
 * into `queue.snapshot`). A send resolves only after its record is fdatasync'ed, so an
 * acknowledged message survives `kill -9`. Leases live in memory only: after a crash every unacked
 * message is deliverable again (at-least-once).
 */
import { KylixError } from '../../errors.js';
import { checkDiskRoom } from '../../storage/disk-room.js';
import { type Journal, openJournal, recordSnapshot, restoreRecords } from '../../storage/journal.js';
import { resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import { Heap } from './heap.js';
import type { Delivery, OutgoingMessage, QueueProvider, QueueStats } from './interface.js';
import { checkMessages, checkReceive } from './validate.js';

type ContentType = OutgoingMessage['contentType'];

/** One journal record. Each states an absolute value, so replaying one twice is harmless. */
type QueueRecord =
  /** Message ids below `next` have been used (compaction writes it, since acked messages leave no record). */
  | { t: 'i'; next: number }
  /** The queue exists (ensure). */
  | { t: 'q'; q: string }
  /** The queue and its messages are gone (purge). */
  | { t: 'p'; q: string }
  /** A message: deliveries so far `n`, deliverable from `at` (ms since the epoch). */
  | {
      t: 's';
      q: string;
      id: number;
      ts: number;
      ct: ContentType;
      b: string;
      at: number;
      n: number;
      /** The sender's traceparent, when it had one. */
      tp?: string;
    }
  /** A message's delivery count and next deliverable time changed (receive, retry). */
  | { t: 'd'; q: string; id: number; n: number; at: number }
  /** The message was acked. */
  | { t: 'a'; q: string; id: number };

interface Message {
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

interface QueueState {
  messages: Map<number, Message>;
  /** Deliverable messages by id (oldest first). */
  ready: Heap<{ id: number; v: number }>;
  /** Delays and leases by the time they end. */
  timers: Heap<{ at: number; id: number; v: number }>;
  /** Receivers waiting for a message. */
  waiters: Set<() => void>;
}

/** Options of the embedded queue. */
export interface EmbeddedQueueOptions {
  dataDir: string;
  /** The journal is not compacted below this size; small in tests to exercise compaction. */
  compactMinBytes?: number;
  /** The clock, injectable for tests. */
  now?: () => number;
}

/** Opens the embedded queue provider on `options.dataDir`. */
export async function openEmbeddedQueue(options: EmbeddedQueueOptions): Promise<EmbeddedQueueProvider> {
  const provider = new EmbeddedQueueProvider(options.now ?? Date.now, options.dataDir);
  const label = 'The embedded queue';
  // A data folder from before the shared journal has only queue.journal, holding every record:
  // it replays as a journal with no snapshot.
  const journal = await openJournal({
    dir: options.dataDir,
    label,
    journalFile: 'queue.journal',
    snapshotFile: 'queue.snapshot',
    compactBytes: options.compactMinBytes ?? 16 * 1024 * 1024,
    restore: (data) => restoreRecords(data, (r) => provider.apply(r as QueueRecord), label),
    replay: (r) => provider.apply(r as QueueRecord),
    snapshot: () => recordSnapshot(provider.snapshot()),
  });
  provider.opened(journal);
  return provider;
}

/** The embedded Queue provider; see the file comment. */
export class EmbeddedQueueProvider implements QueueProvider {
  readonly name = 'embedded';
  private readonly queues = new Map<string, QueueState>();
  private journal!: Journal;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly now: () => number,
    private readonly dataDir: string,
  ) {}

  /**
   * Applies one record of the snapshot or the journal while opening. Each record states an
   * absolute value, so records replayed again on top of a snapshot (a crash during compaction)
   * leave the same state.
   */
  apply(r: QueueRecord): void {
    if (r.t === 'i') this.nextId = Math.max(this.nextId, r.next);
    else if (r.t === 'q') this.state(r.q, true);
    else if (r.t === 'p') this.queues.delete(r.q);
    else if (r.t === 's') {
      const body = new Uint8Array(Buffer.from(r.b, 'base64'));
      const m: Message = { id: r.id, ts: r.ts, ct: r.ct, body, at: r.at, n: r.n, v: 0, durable: true };
      if (r.tp) m.tp = r.tp;
      this.state(r.q, true)?.messages.set(r.id, m);
      this.nextId = Math.max(this.nextId, r.id + 1);
    } else {
      const m = this.queues.get(r.q)?.messages.get(r.id);
      if (!m) return;
      if (r.t === 'a') this.queues.get(r.q)?.messages.delete(r.id);
      else Object.assign(m, { n: r.n, at: r.at });
    }
  }

  /** Takes the opened journal and schedules every message the records rebuilt. */
  opened(journal: Journal): void {
    this.journal = journal;
    for (const q of this.queues.values()) for (const m of q.messages.values()) this.schedule(q, m);
  }

  /**
   * The live state as journal records, for compaction. The state is captured when it is called
   * (the journal's contract); only the bodies' base64 is produced lazily.
   */
  snapshot(): Iterable<QueueRecord> {
    // Without it, ids of messages acked before the compaction would be handed out again after a
    // restart, and a consumer that deduplicates by message id would drop new messages.
    const next = this.nextId;
    const queues = [...this.queues].map(([q, state]) => ({
      q,
      messages: [...state.messages.values()].map(({ id, ts, ct, body, at, n, tp }) => ({
        id,
        ts,
        ct,
        body,
        at,
        n,
        tp,
      })),
    }));
    return (function* (): Generator<QueueRecord> {
      yield { t: 'i', next };
      for (const { q, messages } of queues) {
        yield { t: 'q', q };
        for (const m of messages) {
          const b = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('base64');
          yield {
            t: 's',
            q,
            id: m.id,
            ts: m.ts,
            ct: m.ct,
            b,
            at: m.at,
            n: m.n,
            ...(m.tp ? { tp: m.tp } : {}),
          };
        }
      }
    })();
  }

  /** The journal's and its snapshot's size in bytes (tests check that acked messages are compacted away). */
  get journalBytes(): number {
    return this.journal.size;
  }

  async ensure(ref: ResourceRef): Promise<void> {
    const q = resourceIdentity(ref).token;
    if (this.queues.has(q)) return;
    this.state(q, true);
    await this.journal.append({ t: 'q', q });
  }

  async purge(ref: ResourceRef): Promise<void> {
    const q = resourceIdentity(ref).token;
    const state = this.queues.get(q);
    if (!state) return;
    this.queues.delete(q);
    for (const wake of state.waiters) wake();
    await this.journal.append({ t: 'p', q });
  }

  async health(): Promise<Health> {
    if (this.closed) return { ok: false, message: 'The embedded queue is closed.' };
    return {
      ok: true,
      message: `Embedded queue: ${this.queues.size} queue(s), journal fsynced on every send.`,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.queues.values()) for (const wake of q.waiters) wake();
    await this.journal.close();
  }

  async send(ref: ResourceRef, messages: OutgoingMessage[]): Promise<void> {
    checkMessages(messages);
    const q = resourceIdentity(ref).token;
    const state = this.require(ref);
    // Journaled in base64: a third more than the bodies.
    const bytes = messages.reduce((n, m) => n + m.body.byteLength, 0);
    checkDiskRoom(this.dataDir, Math.ceil(bytes * 1.34), 'The embedded queue');
    this.journal.writable();
    const now = this.now();
    const added: Message[] = [];
    const writes: Promise<void>[] = [];
    for (const msg of messages) {
      const at = now + Math.round((msg.delaySeconds ?? 0) * 1000);
      const m: Message = {
        id: this.nextId++,
        ts: now,
        ct: msg.contentType,
        body: msg.body,
        at,
        n: 0,
        v: 0,
        durable: false,
      };
      if (msg.traceparent) m.tp = msg.traceparent;
      // In memory before the write, so a compaction running meanwhile includes it.
      state.messages.set(m.id, m);
      added.push(m);
      const b = Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength).toString('base64');
      const tp = m.tp ? { tp: m.tp } : {};
      // Dropped, not kept, if a full disk refuses it: the send is undone below.
      writes.push(
        this.journal.append({ t: 's', q, id: m.id, ts: now, ct: m.ct, b, at, n: 0, ...tp }, { drop: true }),
      );
    }
    try {
      await Promise.all(writes);
    } catch (err) {
      for (const m of added) state.messages.delete(m.id);
      throw err;
    }
    for (const m of added) {
      m.durable = true;
      this.schedule(state, m);
    }
  }

  async receive(
    ref: ResourceRef,
    options: { max: number; leaseMs: number; waitMs: number },
  ): Promise<Delivery[]> {
    checkReceive(options);
    const q = resourceIdentity(ref).token;
    const deadline = this.now() + options.waitMs;
    for (;;) {
      const state = this.require(ref);
      const out = this.take(q, state, options.max, options.leaseMs);
      const now = this.now();
      if (out.length > 0 || now >= deadline || this.closed) return out;
      await this.waitForWork(state, deadline);
      if (this.queues.get(q) !== state) return [];
    }
  }

  async extend(ref: ResourceRef, leaseIds: string[], leaseMs: number): Promise<void> {
    const state = this.require(ref);
    for (const leaseId of leaseIds) {
      const m = this.leased(state, leaseId);
      if (!m?.lease) continue;
      m.lease.until = this.now() + leaseMs;
      m.v++;
      state.timers.push({ at: m.lease.until, id: m.id, v: m.v });
    }
  }

  async ack(ref: ResourceRef, leaseIds: string[]): Promise<void> {
    const q = resourceIdentity(ref).token;
    const state = this.require(ref);
    const writes: Promise<void>[] = [];
    for (const leaseId of leaseIds) {
      // Any delivery of a message may ack it, even after its lease ended: the work was done.
      const id = messageIdOf(leaseId);
      if (id === undefined || !state.messages.delete(id)) continue;
      writes.push(this.journal.append({ t: 'a', q, id }));
    }
    await Promise.all(writes);
  }

  async retry(ref: ResourceRef, leaseId: string, delaySeconds: number): Promise<void> {
    const q = resourceIdentity(ref).token;
    const state = this.require(ref);
    const m = this.leased(state, leaseId);
    if (!m) return;
    m.lease = undefined;
    m.at = this.now() + Math.max(0, Math.round(delaySeconds * 1000));
    m.v++;
    this.schedule(state, m);
    await this.journal.append({ t: 'd', q, id: m.id, n: m.n, at: m.at });
  }

  async stats(ref: ResourceRef): Promise<QueueStats> {
    const state = this.require(ref);
    const now = this.now();
    const stats: QueueStats = { ready: 0, inFlight: 0, delayed: 0 };
    for (const m of state.messages.values()) {
      if (m.lease && m.lease.until > now) stats.inFlight++;
      else if (!m.lease && m.at > now) stats.delayed++;
      else stats.ready++;
    }
    return stats;
  }

  async oldestTimestamp(ref: ResourceRef): Promise<number | undefined> {
    // Ids grow with time: the smallest id is the oldest message (a Map iterates in insertion order,
    // which a snapshot restore may not keep, so this looks at every message).
    let oldest: number | undefined;
    for (const m of this.require(ref).messages.values())
      if (oldest === undefined || m.ts < oldest) oldest = m.ts;
    return oldest;
  }

  async peek(ref: ResourceRef, limit: number): Promise<Omit<Delivery, 'leaseId'>[]> {
    const state = this.require(ref);
    const now = this.now();
    return [...state.messages.values()]
      .filter((m) => m.durable && !(m.lease && m.lease.until > now))
      .sort((a, b) => a.id - b.id)
      .slice(0, Math.max(0, limit))
      .map((m) => ({ id: String(m.id), body: m.body, contentType: m.ct, attempts: m.n, timestamp: m.ts }));
  }

  private state(q: string, create: true): QueueState;
  private state(q: string, create: boolean): QueueState | undefined {
    let s = this.queues.get(q);
    if (!s && create) {
      s = {
        messages: new Map(),
        ready: new Heap((a, b) => a.id - b.id),
        timers: new Heap((a, b) => a.at - b.at),
        waiters: new Set(),
      };
      this.queues.set(q, s);
    }
    return s;
  }

  private require(ref: ResourceRef): QueueState {
    if (this.closed) throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded queue is closed.');
    const state = this.queues.get(resourceIdentity(ref).token);
    if (!state)
      throw new KylixError(
        'ERR_NOT_FOUND',
        `Queue "${ref.name}" does not exist in namespace "${ref.namespace}". Apply its manifest first.`,
      );
    return state;
  }

  /** Puts a message where it belongs: ready now, or a timer until its delay or lease ends. */
  private schedule(state: QueueState, m: Message): void {
    const now = this.now();
    if (m.lease) state.timers.push({ at: m.lease.until, id: m.id, v: m.v });
    else if (m.at > now) state.timers.push({ at: m.at, id: m.id, v: m.v });
    else {
      state.ready.push({ id: m.id, v: m.v });
      for (const wake of state.waiters) wake();
    }
  }

  /** Moves messages whose delay or lease has ended to the ready heap. */
  private promote(state: QueueState): void {
    const now = this.now();
    for (let t = state.timers.peek(); t && t.at <= now; t = state.timers.peek()) {
      state.timers.pop();
      const m = state.messages.get(t.id);
      if (!m || m.v !== t.v) continue;
      if (m.lease) m.lease = undefined;
      m.v++;
      state.ready.push({ id: m.id, v: m.v });
    }
  }

  /** Leases up to `max` ready messages, recording each delivery (lazily: losing it costs a count). */
  private take(q: string, state: QueueState, max: number, leaseMs: number): Delivery[] {
    this.promote(state);
    const now = this.now();
    const out: Delivery[] = [];
    while (out.length < max) {
      const r = state.ready.pop();
      if (!r) break;
      const m = state.messages.get(r.id);
      if (!m || m.v !== r.v || m.lease || !m.durable) continue;
      m.n++;
      m.v++;
      m.lease = { id: `${m.id}.${m.n}`, until: now + leaseMs };
      state.timers.push({ at: m.lease.until, id: m.id, v: m.v });
      this.journal.append({ t: 'd', q, id: m.id, n: m.n, at: m.at }).catch(() => {});
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
  private leased(state: QueueState, leaseId: string): Message | undefined {
    const id = messageIdOf(leaseId);
    const m = id === undefined ? undefined : state.messages.get(id);
    return m?.lease?.id === leaseId ? m : undefined;
  }

  /** Resolves when a message may have become deliverable, or at the deadline. */
  private waitForWork(state: QueueState, deadline: number): Promise<void> {
    const next = state.timers.peek()?.at ?? Number.POSITIVE_INFINITY;
    const ms = Math.max(0, Math.min(deadline, next) - this.now());
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        state.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      state.waiters.add(wake);
    });
  }
}

function messageIdOf(leaseId: string): number | undefined {
  const id = Number(leaseId.split('.')[0]);
  return Number.isSafeInteger(id) ? id : undefined;
}
