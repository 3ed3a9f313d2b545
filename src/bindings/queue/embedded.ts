/**
 * The embedded Queue provider: every queue of the installation in memory, every change in one
 * journal under the data folder (the shared src/storage/journal.ts: `queue.journal`, compacted
 * into `queue.snapshot`). A send resolves only after its record is fdatasync'ed, so an
 * acknowledged message survives `kill -9`. Leases live in memory only: after a crash every unacked
 * message is deliverable again (at-least-once). What one queue holds in memory, and how it leases
 * and schedules its messages, is in embedded-state.ts. The messages must fit in memory, so each
 * namespace's queues together may hold at most `namespaceBytes` (KYLIX_QUEUE_NAMESPACE_MIB,
 * default 256 MiB; a send past it fails with ERR_QUOTA_EXCEEDED and stores nothing), and no send
 * is taken while the disk is nearly full (storage/disk-room.ts).
 */
import { KylixError } from '../../errors.js';
import { checkDiskRoom } from '../../storage/disk-room.js';
import { type Journal, openJournal } from '../../storage/journal.js';
import { recordSnapshot, restoreRecords } from '../../storage/journal-files.js';
import { NamespaceBytes, quotaFromEnv } from '../../storage/namespace-bytes.js';
import { namespaceOfToken, resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import { type ContentType, type Message, messageBytes, messageIdOf, QueueState } from './embedded-state.js';
import type { Delivery, OutgoingMessage, QueueProvider, QueueStats } from './interface.js';
import { checkMessages, checkReceive } from './validate.js';

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

/** Options of the embedded queue. */
export interface EmbeddedQueueOptions {
  dataDir: string;
  /** The journal is not compacted below this size; small in tests to exercise compaction. */
  compactMinBytes?: number;
  /** The clock, injectable for tests. */
  now?: () => number;
  /** Bytes of messages one namespace may hold (default KYLIX_QUEUE_NAMESPACE_MIB, else 256 MiB). */
  namespaceBytes?: number;
}

/** Opens the embedded queue provider on `options.dataDir`. */
export async function openEmbeddedQueue(options: EmbeddedQueueOptions): Promise<EmbeddedQueueProvider> {
  const provider = new EmbeddedQueueProvider(
    options.now ?? Date.now,
    options.dataDir,
    options.namespaceBytes ?? quotaFromEnv('KYLIX_QUEUE_NAMESPACE_MIB', 256),
  );
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
  /** Bytes of messages each namespace holds, every queue of it together. */
  private readonly usage: NamespaceBytes;

  constructor(
    private readonly now: () => number,
    private readonly dataDir: string,
    namespaceBytes: number,
  ) {
    this.usage = new NamespaceBytes(namespaceBytes, 'queues', 'KYLIX_QUEUE_NAMESPACE_MIB');
  }

  /**
   * Applies one record of the snapshot or the journal while opening. Each record states an
   * absolute value, so records replayed again on top of a snapshot (a crash during compaction)
   * leave the same state.
   */
  apply(r: QueueRecord): void {
    if (r.t === 'i') this.nextId = Math.max(this.nextId, r.next);
    else if (r.t === 'q') this.state(r.q, true);
    else if (r.t === 'p') this.drop(r.q);
    else if (r.t === 's') {
      const body = new Uint8Array(Buffer.from(r.b, 'base64'));
      const m: Message = { id: r.id, ts: r.ts, ct: r.ct, body, at: r.at, n: r.n, v: 0, durable: true };
      if (r.tp) m.tp = r.tp;
      this.usage.add(namespaceOfToken(r.q), this.state(r.q, true).add(m));
      this.nextId = Math.max(this.nextId, r.id + 1);
    } else if (r.t === 'a') this.remove(r.q, r.id);
    else {
      const m = this.queues.get(r.q)?.messages.get(r.id);
      if (m) Object.assign(m, { n: r.n, at: r.at });
    }
  }

  /** Takes the opened journal and schedules every message the records rebuilt. */
  opened(journal: Journal): void {
    this.journal = journal;
    const now = this.now();
    for (const q of this.queues.values()) for (const m of q.messages.values()) q.schedule(m, now);
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
    const state = this.drop(q);
    if (!state) return;
    state.wakeAll();
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
    for (const q of this.queues.values()) q.wakeAll();
    await this.journal.close();
  }

  async send(ref: ResourceRef, messages: OutgoingMessage[]): Promise<void> {
    checkMessages(messages);
    const q = resourceIdentity(ref).token;
    const state = this.require(ref);
    // Journaled in base64: a third more than the bodies.
    const bytes = messages.reduce((n, m) => n + m.body.byteLength, 0);
    checkDiskRoom(this.dataDir, Math.ceil(bytes * 1.34), 'The embedded queue');
    this.usage.check(
      ref.namespace,
      messages.reduce((n, m) => n + messageBytes(m.body.byteLength, m.traceparent), 0),
      'Consume or purge its queues first, or keep large backlogs on NATS JetStream.',
    );
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
      this.usage.add(ref.namespace, state.add(m));
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
      for (const m of added) this.remove(q, m.id);
      throw err;
    }
    for (const m of added) {
      m.durable = true;
      state.schedule(m, this.now());
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
      const out = state.take(options.max, options.leaseMs, this.now(), (m) => {
        this.journal.append({ t: 'd', q, id: m.id, n: m.n, at: m.at }).catch(() => {});
      });
      const now = this.now();
      if (out.length > 0 || now >= deadline || this.closed) return out;
      await state.waitForWork(deadline, now);
      if (this.queues.get(q) !== state) return [];
    }
  }

  async extend(ref: ResourceRef, leaseIds: string[], leaseMs: number): Promise<void> {
    const state = this.require(ref);
    for (const leaseId of leaseIds) {
      const m = state.leased(leaseId);
      if (m) state.extendLease(m, this.now() + leaseMs);
    }
  }

  async ack(ref: ResourceRef, leaseIds: string[]): Promise<void> {
    const q = resourceIdentity(ref).token;
    this.require(ref);
    const writes: Promise<void>[] = [];
    for (const leaseId of leaseIds) {
      // Any delivery of a message may ack it, even after its lease ended: the work was done.
      const id = messageIdOf(leaseId);
      if (id === undefined || !this.remove(q, id)) continue;
      writes.push(this.journal.append({ t: 'a', q, id }));
    }
    await Promise.all(writes);
  }

  async retry(ref: ResourceRef, leaseId: string, delaySeconds: number): Promise<void> {
    const q = resourceIdentity(ref).token;
    const state = this.require(ref);
    const m = state.leased(leaseId);
    if (!m) return;
    m.lease = undefined;
    m.at = this.now() + Math.max(0, Math.round(delaySeconds * 1000));
    m.v++;
    state.schedule(m, this.now());
    await this.journal.append({ t: 'd', q, id: m.id, n: m.n, at: m.at });
  }

  async stats(ref: ResourceRef): Promise<QueueStats> {
    return this.require(ref).stats(this.now());
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
      s = new QueueState();
      this.queues.set(q, s);
    }
    return s;
  }

  /** Drops message `id` of queue `q`; whether the queue held it. */
  private remove(q: string, id: number): boolean {
    const freed = this.queues.get(q)?.remove(id) ?? 0;
    this.usage.add(namespaceOfToken(q), -freed);
    return freed > 0;
  }

  /** Forgets queue `q` and its messages; returns its state, if it had one. */
  private drop(q: string): QueueState | undefined {
    const state = this.queues.get(q);
    if (!state) return undefined;
    this.queues.delete(q);
    this.usage.add(namespaceOfToken(q), -state.bytes);
    return state;
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
}
