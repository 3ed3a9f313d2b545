/**
 * The embedded KeyValue provider: every resource's entries in memory, every change journaled and
 * fdatasynced before a put or delete resolves (src/storage/journal.ts), so an acknowledged write
 * survives `kill -9`. One journal serves all resources, so concurrent writes to many namespaces
 * share each sync. Made for `kylix dev` and single nodes: the data must fit in memory, so each
 * namespace may hold at most `namespaceBytes` (KYLIX_KV_NAMESPACE_MIB, default 256 MiB) of keys and
 * values, and no put is taken while the disk is nearly full (storage/disk-room.ts).
 */
import { KylixError } from '../../errors.js';
import { checkDiskRoom } from '../../storage/disk-room.js';
import { type Journal, openJournal } from '../../storage/journal.js';
import { splitLines } from '../../storage/journal-files.js';
import { NamespaceBytes, quotaFromEnv } from '../../storage/namespace-bytes.js';
import { SortedKeys } from '../../storage/sorted-keys.js';
import { checkRef, encodeCursor } from '../arguments.js';
import { namespaceOf, resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import { checkKvKey, checkKvList, checkKvPut } from './checks.js';
import type { KeyValueProvider, KvEntry, KvListResult } from './interface.js';

/** Where the embedded provider keeps its journal and snapshot. */
export interface EmbeddedKeyValueConfig {
  dataDir: string;
  /** How often expired entries are dropped from memory (default 60 s); reads never return them anyway. */
  sweepIntervalMs?: number;
  /** Compact the journal past this size (default 16 MiB); tests lower it. */
  compactBytes?: number;
  /** Bytes of keys and values one namespace may hold (default KYLIX_KV_NAMESPACE_MIB, else 256 MiB). */
  namespaceBytes?: number;
}

/** One stored entry; replaced, never modified, so a snapshot can hold references to it. */
interface Stored {
  value: Buffer;
  /** The metadata as JSON. */
  meta?: string;
  /** Seconds since the epoch. */
  exp?: number;
}

/** A journal record: put, delete, or purge of a whole resource ("r" is resourceIdentity().path). */
type KvRecord =
  | { s: number; o: 'p'; r: string; k: string; v: string; m?: string; x?: number }
  | { s: number; o: 'd'; r: string; k: string }
  | { s: number; o: 'x'; r: string };

/** One line of the snapshot after its header. */
interface SnapshotRow {
  r: string;
  k: string;
  v: string;
  m?: string;
  x?: number;
}

class Space {
  constructor(
    /** The namespace whose quota the space counts against. */
    readonly namespace: string,
  ) {}
  /** In the order they were last put (the oldest first, for a cache's eviction). */
  readonly entries = new Map<string, Stored>();
  readonly keys = new SortedKeys();
  /** Bytes of the keys and values held. */
  bytes = 0;
}

/** What an entry costs in memory: its key, value and metadata, and the maps and objects that hold it. */
const ENTRY_OVERHEAD = 160;
const sizeOf = (key: string, s: Stored) =>
  key.length * 2 + s.value.byteLength + (s.meta === undefined ? 0 : s.meta.length * 2) + ENTRY_OVERHEAD;

const expired = (s: Stored, nowMs: number) => s.exp !== undefined && s.exp * 1000 <= nowMs;

/** Opens (or creates) the embedded KeyValue store under `config.dataDir`. */
export async function openEmbeddedKeyValue(config: EmbeddedKeyValueConfig): Promise<EmbeddedKeyValue> {
  const kv = new EmbeddedKeyValue(config);
  await kv.open();
  return kv;
}

/** The embedded provider; see the file comment. */
export class EmbeddedKeyValue implements KeyValueProvider {
  readonly name = 'embedded';
  private readonly spaces = new Map<string, Space>();
  /** Bytes of keys and values each namespace holds, every space of it together. */
  private readonly usage: NamespaceBytes;
  private journal?: Journal;
  private seq = 0;
  private snapshotSeq = 0;
  private sweeper?: NodeJS.Timeout;

  constructor(private readonly config: EmbeddedKeyValueConfig) {
    this.usage = new NamespaceBytes(
      config.namespaceBytes ?? quotaFromEnv('KYLIX_KV_NAMESPACE_MIB', 256),
      'KeyValue namespaces',
      'KYLIX_KV_NAMESPACE_MIB',
    );
  }

  /** 1. Restore the snapshot, 2. replay the journal, 3. start sweeping expired entries. */
  async open(): Promise<void> {
    this.journal = await openJournal({
      dir: this.config.dataDir,
      label: 'The embedded KeyValue store',
      snapshotFile: 'snapshot.jsonl',
      compactBytes: this.config.compactBytes,
      restore: (data) => this.restore(data),
      replay: (record) => this.replay(record as KvRecord),
      snapshot: () => this.snapshot(),
    });
    this.sweeper = setInterval(() => this.sweep(), this.config.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async ensure(ref: ResourceRef): Promise<void> {
    // Entries are created on first put; there is nothing to prepare, only a name to check.
    checkRef(ref);
  }

  async purge(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    const r = resourceIdentity(ref).path;
    this.forget(r);
    await this.write({ s: ++this.seq, o: 'x', r });
  }

  async health(): Promise<Health> {
    const broken = this.journal?.broken;
    if (!this.journal) return { ok: false, message: 'closed' };
    if (broken) return { ok: false, message: `cannot write its journal: ${broken.message}` };
    return { ok: true, message: `embedded, ${this.spaces.size} resources in ${this.config.dataDir}` };
  }

  async get(ref: ResourceRef, key: string): Promise<KvEntry | null> {
    checkKvKey(ref, key);
    const space = this.spaces.get(resourceIdentity(ref).path);
    const stored = space?.entries.get(key);
    if (!space || !stored) return null;
    if (expired(stored, Date.now())) {
      this.drop(space, key);
      return null;
    }
    const entry: KvEntry = { value: new Uint8Array(stored.value) };
    if (stored.meta !== undefined) entry.metadata = JSON.parse(stored.meta);
    if (stored.exp !== undefined) entry.expiration = stored.exp;
    return entry;
  }

  async put(
    ref: ResourceRef,
    key: string,
    value: Uint8Array,
    options?: { expiration?: number; metadata?: unknown; capacity?: number },
  ): Promise<void> {
    const put = checkKvPut(ref, key, value, options);
    const r = resourceIdentity(ref).path;
    // A copy: the caller may reuse its buffer once put returns.
    const stored: Stored = { value: Buffer.from(put.value) };
    if (put.metadata !== undefined) stored.meta = put.metadata;
    if (put.expiration !== undefined) stored.exp = put.expiration;
    // A cache's space keeps itself within its capacity; any other counts against the namespace's quota.
    this.checkRoom(r, key, stored, options?.capacity === undefined);
    const space = this.set(r, key, stored);
    const record: KvRecord = { s: ++this.seq, o: 'p', r, k: key, v: stored.value.toString('base64') };
    if (stored.meta !== undefined) record.m = stored.meta;
    if (stored.exp !== undefined) record.x = stored.exp;
    // The journal keeps the order of these calls, with no await between a change in memory and
    // its record: a delete or put of the same key meanwhile is journaled in the order memory saw it.
    const writes = [this.write(record)];
    if (options?.capacity !== undefined) this.evict(r, space, options.capacity, writes);
    await Promise.all(writes);
  }

  async delete(ref: ResourceRef, key: string): Promise<void> {
    checkKvKey(ref, key);
    const r = resourceIdentity(ref).path;
    const space = this.spaces.get(r);
    // Already absent: still wait for writes queued before, or an earlier delete of it may not be durable yet.
    if (!space?.entries.has(key)) return this.journal?.barrier();
    this.journal?.writable();
    this.drop(space, key);
    await this.write({ s: ++this.seq, o: 'd', r, k: key });
  }

  async list(
    ref: ResourceRef,
    options?: { prefix?: string; limit?: number; cursor?: string },
  ): Promise<KvListResult> {
    const { prefix, limit, after } = checkKvList(ref, options);
    const space = this.spaces.get(resourceIdentity(ref).path);
    if (!space) return { keys: [], list_complete: true };
    const order = space.keys.order();
    const start = Math.max(space.keys.seek(prefix), after === undefined ? 0 : space.keys.seek(after, true));
    const now = Date.now();
    const keys: KvListResult['keys'] = [];
    const stale: string[] = [];
    for (let i = start; i < order.length; i++) {
      const key = order[i]!;
      if (!key.startsWith(prefix)) break;
      const stored = space.entries.get(key);
      if (!stored || expired(stored, now)) {
        stale.push(key);
        continue;
      }
      if (keys.length === limit) {
        for (const k of stale) this.drop(space, k);
        return { keys, list_complete: false, cursor: encodeCursor(keys[limit - 1]!.name) };
      }
      const item: KvListResult['keys'][number] = { name: key };
      if (stored.exp !== undefined) item.expiration = stored.exp;
      if (stored.meta !== undefined) item.metadata = JSON.parse(stored.meta);
      keys.push(item);
    }
    for (const k of stale) this.drop(space, k);
    return { keys, list_complete: true };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.journal?.close();
    this.journal = undefined;
  }

  private async write(record: KvRecord): Promise<void> {
    if (!this.journal)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded KeyValue store is closed.');
    await this.journal.append(record);
  }

  /**
   * Refuses a put while the journal cannot write, one that would take the disk into its reserve, or
   * (`quota`: a cache's space keeps itself within its capacity instead) its namespace past its quota.
   * Checked before memory changes, so a refused put changes nothing.
   */
  private checkRoom(r: string, key: string, stored: Stored, quota: boolean): void {
    if (!this.journal)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded KeyValue store is closed.');
    this.journal.writable();
    // Journaled in base64: a third more than the value.
    checkDiskRoom(
      this.config.dataDir,
      Math.ceil(stored.value.byteLength * 1.34),
      'The embedded KeyValue store',
    );
    if (!quota) return;
    const old = this.spaces.get(r)?.entries.get(key);
    const grows = sizeOf(key, stored) - (old ? sizeOf(key, old) : 0);
    this.usage.check(namespaceOf(r), grows, 'Delete keys, or give them an expiration.');
  }

  private set(r: string, key: string, stored: Stored): Space {
    let space = this.spaces.get(r);
    if (!space) {
      space = new Space(namespaceOf(r));
      this.spaces.set(r, space);
    }
    // Deleted first, so the entry moves to the end of the put order.
    const old = space.entries.get(key);
    if (old) {
      space.entries.delete(key);
      space.bytes -= sizeOf(key, old);
      this.usage.add(space.namespace, -sizeOf(key, old));
    }
    space.entries.set(key, stored);
    space.bytes += sizeOf(key, stored);
    this.usage.add(space.namespace, sizeOf(key, stored));
    space.keys.add(key);
    return space;
  }

  /** Forgets a whole space (a purge). */
  private forget(r: string): void {
    const space = this.spaces.get(r);
    if (!space) return;
    this.usage.add(space.namespace, -space.bytes);
    this.spaces.delete(r);
  }

  /** Forgets an entry in memory only: an expired one needs no record, replay drops it again. */
  private drop(space: Space, key: string): void {
    const old = space.entries.get(key);
    if (!old) return;
    space.entries.delete(key);
    space.bytes -= sizeOf(key, old);
    this.usage.add(space.namespace, -sizeOf(key, old));
    space.keys.delete(key);
  }

  /** Deletes the space's least recently put entries until it holds at most `capacity` bytes; their records' writes join `writes`. */
  private evict(r: string, space: Space, capacity: number, writes: Promise<void>[]): void {
    for (const key of space.entries.keys()) {
      if (space.bytes <= capacity || space.entries.size <= 1) break;
      this.drop(space, key);
      writes.push(this.write({ s: ++this.seq, o: 'd', r, k: key }));
    }
  }

  /** Drops expired entries, so memory does not keep what no read will ever return. */
  private sweep(): void {
    const now = Date.now();
    for (const [r, space] of this.spaces) {
      for (const [key, stored] of space.entries) if (expired(stored, now)) this.drop(space, key);
      if (space.entries.size === 0) this.spaces.delete(r);
    }
  }

  private restore(data: Buffer): void {
    const now = Date.now();
    let header = true;
    for (const { line } of splitLines(data)) {
      if (header) {
        this.snapshotSeq = this.seq = (JSON.parse(line) as { seq: number }).seq;
        header = false;
        continue;
      }
      const row = JSON.parse(line) as SnapshotRow;
      const stored: Stored = { value: Buffer.from(row.v, 'base64'), meta: row.m, exp: row.x };
      if (!expired(stored, now)) this.set(row.r, row.k, stored);
    }
  }

  private replay(record: KvRecord): void {
    // Records at or below the snapshot's sequence are in it already (a crash during compaction).
    if (record.s <= this.snapshotSeq) return;
    this.seq = record.s;
    if (record.o === 'x') this.forget(record.r);
    else if (record.o === 'd') {
      const space = this.spaces.get(record.r);
      if (space) this.drop(space, record.k);
    } else {
      const stored: Stored = { value: Buffer.from(record.v, 'base64'), meta: record.m, exp: record.x };
      if (expired(stored, Date.now())) {
        const space = this.spaces.get(record.r);
        if (space) this.drop(space, record.k);
      } else this.set(record.r, record.k, stored);
    }
  }

  /** The state as JSON lines: a header with the sequence, then one line per live entry. */
  private snapshot(): Iterable<string> {
    const seq = this.seq;
    const rows: [string, string, Stored][] = [];
    for (const [r, space] of this.spaces) for (const [k, s] of space.entries) rows.push([r, k, s]);
    return (function* () {
      yield `${JSON.stringify({ kylix: 'keyvalue', seq })}\n`;
      const now = Date.now();
      for (const [r, k, s] of rows) {
        if (expired(s, now)) continue;
        const row: SnapshotRow = { r, k, v: s.value.toString('base64') };
        if (s.meta !== undefined) row.m = s.meta;
        if (s.exp !== undefined) row.x = s.exp;
        yield `${JSON.stringify(row)}\n`;
      }
    })();
  }
}
