/**
 * The one durable journal of JSON records, shared by the embedded state store and every embedded
 * binding provider (KeyValue, Bucket index, Queue). The state lives in the caller's memory; every
 * change is a record appended to a file and fdatasynced before the caller's write is acknowledged,
 * so an acknowledged write survives `kill -9`. Records that arrive while a sync is under way share
 * the next one (group commit). Once the journal outgrows the last snapshot (and `compactBytes`),
 * the state is written as a new snapshot and the journal starts over, so superseded records leave
 * the disk.
 *
 * Every fault it reports is one `KylixError` code, ERR_BACKEND_UNAVAILABLE (the embedded
 * providers' backend is the local disk): a failed write or fsync, a corrupt file, a closed journal.
 *
 * A full disk is not the end: the file is cut back to its last whole batch, the batch's callers are
 * told, and its records (whose changes the caller's memory already holds) are written first with
 * the next batch, or by a retry every second, once there is room; a caller that undoes its change
 * when told appends with `drop`, and its record is dropped instead. While records wait, callers
 * check `writable()` before changing memory, so the wait does not grow. Any other failure leaves
 * the file in an unknown state, and nothing more is written. The files' format, and the helpers
 * that write and sync them, are in journal-files.ts.
 */
import { existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KylixError } from '../errors.js';
import { corrupt, splitLines, syncDir, writeAll } from './journal-files.js';

/** How a journal finds, loads and snapshots its caller's state. */
export interface JournalOptions {
  /** Folder holding the journal and its snapshot (created if missing). */
  dir: string;
  /** Names the state in error messages: "the state store", "the KeyValue store". */
  label: string;
  /** Default "journal.log". */
  journalFile?: string;
  /** Default "snapshot.json". */
  snapshotFile?: string;
  /** Compact once the journal holds this many bytes and more than the last snapshot (default 16 MiB). */
  compactBytes?: number;
  /**
   * Loads the snapshot's bytes, when there is one, before any record is replayed. Callers whose
   * snapshot is itself a list of records use `recordSnapshot` and `restoreRecords`.
   */
  restore?: (snapshot: Buffer) => void;
  /**
   * Applies one record while loading. After a crash during compaction, records already in the
   * snapshot are replayed again: callers make them skippable (a sequence number) or idempotent.
   */
  replay: (record: unknown) => void;
  /**
   * Captures the whole state as snapshot chunks. It is called synchronously, so it sees one
   * consistent state; the chunks may be produced lazily, from values captured at the call.
   */
  snapshot: () => Iterable<string | Uint8Array>;
}

interface Pending {
  data: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Dropped, not kept for later, when a full disk refuses it (its caller undoes the change). */
  drop?: boolean;
}

const DEFAULT_COMPACT_BYTES = 16 * 1024 * 1024;
/** How often records a full disk refused are tried again. */
const RETRY_MS = 1000;
/** Records a full disk refused that are kept to write later; past this the journal stops for good. */
const MAX_UNWRITTEN_BYTES = 64 * 1024 * 1024;

/** Whether a write failed for want of room (the file can be cut back and written again later). */
function outOfSpace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Opens the journal in `options.dir`: restores the snapshot, replays the records, opens for append. */
export async function openJournal(options: JournalOptions): Promise<Journal> {
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const journal = new Journal(options);
  journal.load();
  await journal.openForAppend();
  return journal;
}

/** The journal; see the file comment. */
export class Journal {
  private handle?: FileHandle;
  private bytes = 0;
  /** The snapshot file's size. */
  private snapshotBytes = 0;
  /** The journal compacts once it holds more than this many bytes (raised after a failed compaction). */
  private compactAt = 0;
  private pending: Pending[] = [];
  /** Callers of compactNow() waiting for the next compaction. */
  private compactWaiters: Pending[] = [];
  private flushing = false;
  private idle: Promise<void> = Promise.resolve();
  private failure?: Error;
  /** Records refused by a full disk, written before the next batch; and why they were refused. */
  private unwritten: Buffer[] = [];
  private stalledBy?: Error;
  private retryTimer?: NodeJS.Timeout;
  private readonly journalPath: string;
  private readonly snapshotPath: string;
  private readonly compactBytes: number;

  constructor(private readonly options: JournalOptions) {
    this.journalPath = join(options.dir, options.journalFile ?? 'journal.log');
    this.snapshotPath = join(options.dir, options.snapshotFile ?? 'snapshot.json');
    this.compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
  }

  /** Bytes on disk: the snapshot and the journal after it (tests check that compaction shrinks it). */
  get size(): number {
    return this.snapshotBytes + this.bytes;
  }

  /**
   * Why the journal cannot write now: a failure that stopped it for good (the file is in an unknown
   * state), or a full disk while records wait for room.
   */
  get broken(): Error | undefined {
    return this.failure ?? this.stalledBy;
  }

  /**
   * 1. Restore the snapshot, 2. replay every record after it, 3. cut a torn last line off the
   * file (it was never acknowledged), so that new records do not get glued to it.
   */
  load(): void {
    if (existsSync(this.snapshotPath)) {
      const snapshot = readFileSync(this.snapshotPath);
      this.snapshotBytes = snapshot.length;
      this.options.restore?.(snapshot);
    }
    if (!existsSync(this.journalPath)) return;
    const data = readFileSync(this.journalPath);
    let lineNo = 0;
    for (const { line, last } of splitLines(data)) {
      lineNo++;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        // Only the last line can be torn by a crash mid-write; it was never acknowledged.
        if (last) break;
        throw corrupt(this.options.label, this.journalPath, lineNo);
      }
      this.options.replay(record);
    }
    const complete = data.lastIndexOf(0x0a) + 1;
    if (complete < data.length) truncateSync(this.journalPath, complete);
  }

  /** Opens the journal file for appending; a new file's name is made durable at once. */
  async openForAppend(): Promise<void> {
    const created = !existsSync(this.journalPath);
    this.handle = await open(this.journalPath, 'a', 0o600);
    this.bytes = (await this.handle.stat()).size;
    this.compactAt = Math.max(this.compactBytes, this.snapshotBytes);
    // Without it, a crash could lose the whole journal file along with acknowledged records.
    if (created) await syncDir(this.options.dir);
  }

  /**
   * Appends one record; resolves once it is on disk. Records resolve in the order they were appended.
   * Refused by a full disk, a record is kept and written later, unless `drop` (its caller undoes it).
   */
  append(record: unknown, options?: { drop?: boolean }): Promise<void> {
    if (this.failure) return Promise.reject(this.unwritable(this.failure));
    if (!this.handle) return Promise.reject(this.unwritable(new Error('it is closed')));
    const data = Buffer.from(`${JSON.stringify(record)}\n`);
    return new Promise((resolve, reject) => this.enqueue({ data, resolve, reject, drop: options?.drop }));
  }

  /** Throws what append() would reject with now: callers check it before they change memory. */
  writable(): void {
    const why = this.broken;
    if (why) throw this.unwritable(why);
    if (!this.handle) throw this.unwritable(new Error('it is closed'));
  }

  /** True while records a full disk refused are kept, to be written once there is room. */
  get stalled(): boolean {
    return this.unwritten.length > 0 && !this.failure;
  }

  /** Queues a record for the next write and starts the flush loop if it is not running. */
  private enqueue(p: Pending): void {
    this.pending.push(p);
    if (!this.flushing) {
      this.flushing = true;
      this.idle = this.flush();
    }
  }

  /** Resolves once every record appended so far is on disk (at once when none is waiting). */
  barrier(): Promise<void> {
    if (!this.flushing && this.unwritten.length === 0) return Promise.resolve();
    // Records a full disk refused are tried again first: the barrier holds until they are written.
    return this.barrierWith(Buffer.alloc(0));
  }

  /**
   * Writes a snapshot now and empties the journal, so superseded records leave the disk (after
   * secret values were re-sealed, say). Resolves once done, after every record appended before it.
   */
  compactNow(): Promise<void> {
    if (this.failure) return Promise.reject(this.unwritable(this.failure));
    if (!this.handle) return Promise.reject(this.unwritable(new Error('it is closed')));
    return new Promise((resolve, reject) => {
      this.compactWaiters.push({ data: Buffer.alloc(0), resolve, reject });
      // An empty record makes the flush loop run, and compaction runs only there.
      this.enqueue({ data: Buffer.alloc(0), resolve: () => {}, reject: () => {} });
    });
  }

  /** Waits for queued records to be written, then closes the file. */
  async close(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // Records a full disk refused get one last try.
    if (this.unwritten.length > 0 && this.handle && !this.failure)
      await this.barrierWith(Buffer.alloc(0)).catch(() => {});
    while (this.flushing) await this.idle;
    await this.handle?.close();
    this.handle = undefined;
  }

  private unwritable(err: Error): KylixError {
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      outOfSpace(err)
        ? `${this.options.label} cannot write: the disk is full (${err.message}). Free space on the node's data disk; the change is written once there is room.`
        : `${this.options.label} cannot write: ${err.message}`,
    );
  }

  /** Queues `data` and resolves (or rejects) once it was written. */
  private barrierWith(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ data, resolve, reject }));
  }

  /** Tries the records a full disk refused again in a while, if nothing else writes before. */
  private retryLater(): void {
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      if (this.unwritten.length > 0 && this.handle && !this.failure)
        this.barrierWith(Buffer.alloc(0)).catch(() => {});
    }, RETRY_MS).unref();
  }

  /**
   * After a failed write: for want of room, cuts the file back to its last whole batch and keeps the
   * batch's records to write later (true); anything else, or a file that cannot be cut back, stops
   * the journal (false).
   */
  private async recover(err: Error, records: Buffer[], size: number): Promise<boolean> {
    if (this.failure || !this.handle || !outOfSpace(err) || size > MAX_UNWRITTEN_BYTES) return false;
    try {
      await this.handle.truncate(this.bytes);
    } catch {
      return false;
    }
    this.unwritten = records;
    this.stalledBy = records.length > 0 ? err : undefined;
    this.retryLater();
    return true;
  }

  /** Writes batches until none is queued; `flushing` drops in the same tick as the last check. */
  private async flush(): Promise<void> {
    // 1. Take the queued batch, 2. write it and fdatasync, 3. acknowledge it, 4. compact if due.
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      // Records a full disk refused go first: the caller's memory already holds their changes.
      const buffers = this.unwritten.concat(batch.map((p) => p.data));
      const size = buffers.reduce((n, b) => n + b.length, 0);
      const kept = () => this.unwritten.concat(batch.filter((p) => !p.drop).map((p) => p.data));
      try {
        if (!this.handle) throw new Error('it is closed');
        if (this.failure) throw this.failure;
        await writeAll(this.handle, buffers, size);
        await this.handle.datasync();
        this.bytes += size;
        this.unwritten = [];
        this.stalledBy = undefined;
      } catch (err) {
        // A failed write or fsync leaves the file in an unknown state: unless the disk was only
        // full (then the file is cut back), stop writing rather than guess.
        if (!(await this.recover(err as Error, kept(), size))) this.failure ??= err as Error;
        for (const p of batch) p.reject(this.unwritable(err as Error));
        const waiters = this.compactWaiters;
        this.compactWaiters = [];
        for (const w of waiters) w.reject(this.unwritable(err as Error));
        continue;
      }
      for (const p of batch) p.resolve();
      const waiters = this.compactWaiters;
      if (waiters.length > 0 || this.bytes > this.compactAt) {
        this.compactWaiters = [];
        try {
          await this.compact();
          for (const w of waiters) w.resolve();
        } catch (err) {
          // The journal still holds every record, so nothing is lost; try again once it has grown.
          this.compactAt = Math.max(this.compactBytes, this.bytes);
          process.emitWarning(
            `${this.options.label} could not compact its journal: ${(err as Error).message}`,
          );
          for (const w of waiters) w.reject(this.unwritable(err as Error));
        }
      }
    }
    this.flushing = false;
  }

  /**
   * 1. Capture the state, 2. write it to a temp file and fsync it, 3. rename it over the snapshot
   * and fsync the folder, 4. empty the journal. A crash before 3 leaves the old snapshot and the full
   * journal; a crash between 3 and 4 replays records the snapshot already holds (see `replay`).
   */
  private async compact(): Promise<void> {
    const chunks = this.options.snapshot();
    const tmp = `${this.snapshotPath}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    let written = 0;
    let done = false;
    try {
      let batch: Buffer[] = [];
      let batchBytes = 0;
      for (const chunk of chunks) {
        const b =
          typeof chunk === 'string'
            ? Buffer.from(chunk)
            : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        batch.push(b);
        batchBytes += b.length;
        if (batchBytes >= 1024 * 1024) {
          await writeAll(file, batch, batchBytes);
          written += batchBytes;
          batch = [];
          batchBytes = 0;
        }
      }
      if (batch.length > 0) await writeAll(file, batch, batchBytes);
      written += batchBytes;
      await file.sync();
      done = true;
    } finally {
      await file.close();
      // A snapshot a full disk cut short must not keep the space it took.
      if (!done) await unlink(tmp).catch(() => {});
    }
    await rename(tmp, this.snapshotPath);
    await syncDir(this.options.dir);
    await this.handle?.truncate(0);
    this.bytes = 0;
    this.snapshotBytes = written;
    this.compactAt = Math.max(this.compactBytes, written);
  }
}
