/**
 * A durable journal: JSON records appended to one file and fdatasync'ed before a durable append
 * resolves, so what was acknowledged survives `kill -9`. Appends that arrive together share one
 * fdatasync (group commit). When the file has doubled since its last compaction (or, after a start,
 * once it passes compactMinBytes), it is rewritten from the owner's live state (temp file, fsync,
 * rename, fsync folder), so acked data goes for good.
 *
 * The embedded queue's own copy of the pattern in src/storage/journal.ts (which keeps a snapshot
 * beside the journal); the two should become one module.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, truncateSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KylixError } from '../../errors.js';

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Options of a journal. */
export interface JournalOptions<R> {
  /** The live state as records; replaying them alone rebuilds the state. Records must be idempotent. */
  snapshot: () => Iterable<R>;
  /** Never compact below this size (bytes). */
  compactMinBytes: number;
}

/** Opens a journal and returns it with the records it held, oldest first. */
export async function openJournal<R>(
  path: string,
  options: JournalOptions<R>,
): Promise<{ journal: Journal<R>; records: R[] }> {
  const records = existsSync(path) ? readRecords<R>(path) : [];
  const created = !existsSync(path);
  const handle = await open(path, 'a', 0o600);
  // A new file's name must be durable too, or a crash could lose the whole journal.
  if (created) fsyncDir(dirname(path));
  const journal = new Journal<R>(path, handle, (await handle.stat()).size, options);
  return { journal, records };
}

/**
 * Reads every complete record. Only the last line can be torn (a crash mid-append, never
 * acknowledged); it is cut off so the next append starts on a clean line.
 */
function readRecords<R>(path: string): R[] {
  const text = readFileSync(path, 'utf8');
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) truncateSync(path, Buffer.byteLength(text.slice(0, end)));
  const lines = text.slice(0, end).split('\n');
  const out: R[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as R);
    } catch {
      throw new KylixError(
        'ERR_BACKEND_UNAVAILABLE',
        `${path} is corrupt at line ${i + 1}; restore the data folder from a backup.`,
      );
    }
  }
  return out;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** An open journal; see the file comment. */
export class Journal<R> {
  private pending: Pending[] = [];
  /** Set synchronously when the flush loop starts and ends, so no append is left unflushed. */
  private running = false;
  private flushed: Promise<void> = Promise.resolve();
  private broken?: Error;
  private closed = false;
  private compactedBytes: number;

  constructor(
    private readonly path: string,
    private handle: FileHandle,
    private bytes: number,
    private readonly options: JournalOptions<R>,
  ) {
    // How much of an existing file is live is unknown until a compaction measures it. Counting it
    // all as live would move the next compaction past twice the file's size at every start, so a
    // node restarted more often than its journal doubles would never compact: once past
    // compactMinBytes, the first flush compacts.
    this.compactedBytes = 0;
  }

  /** The file's size now, for tests and stats. */
  get size(): number {
    return this.bytes;
  }

  /**
   * Appends a record. The promise resolves once it is on disk; callers that can afford to lose the
   * record in a crash (a delivery count) may ignore it, and it rides the next group commit.
   */
  append(record: R): Promise<void> {
    if (this.broken) return Promise.reject(this.failure(this.broken));
    if (this.closed) return Promise.reject(new KylixError('ERR_BACKEND_UNAVAILABLE', 'The queue is closed.'));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: `${JSON.stringify(record)}\n`, resolve, reject });
      if (!this.running) {
        this.running = true;
        this.flushed = this.flush();
      }
    });
  }

  /** Waits for every queued append, then closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running) await this.flushed;
    await this.handle.close();
  }

  private failure(err: Error): KylixError {
    return new KylixError('ERR_BACKEND_UNAVAILABLE', `The queue journal cannot write: ${err.message}`);
  }

  private async flush(): Promise<void> {
    for (;;) {
      if (this.pending.length === 0) {
        this.running = false;
        return;
      }
      const batch = this.pending;
      this.pending = [];
      try {
        if (this.broken) throw this.broken;
        const data = Buffer.from(batch.map((p) => p.line).join(''));
        const { bytesWritten } = await this.handle.write(data);
        // A short write (a full disk) would leave a torn record in the middle of the file.
        if (bytesWritten !== data.length)
          throw new Error(`only ${bytesWritten} of ${data.length} bytes were written (is the disk full?)`);
        await this.handle.datasync();
        this.bytes += data.length;
        if (this.bytes > Math.max(this.options.compactMinBytes, 2 * this.compactedBytes))
          await this.compact();
      } catch (err) {
        // A failed write or fsync leaves the file in an unknown state: stop writing rather than guess.
        this.broken ??= err as Error;
        for (const p of batch) p.reject(this.failure(this.broken));
        continue;
      }
      for (const p of batch) p.resolve();
    }
  }

  /**
   * 1. Write the live state to a temp file, 2. fsync it, 3. rename it over the journal, 4. fsync the
   * folder, 5. append to the new file. Records still queued are appended after the snapshot; they
   * are idempotent, so replaying them on top of it is harmless.
   */
  private async compact(): Promise<void> {
    const tmp = `${this.path}.compact`;
    const out = await open(tmp, 'w', 0o600);
    try {
      let chunk = '';
      for (const record of this.options.snapshot()) {
        chunk += `${JSON.stringify(record)}\n`;
        if (chunk.length > 1 << 20) {
          await out.write(chunk);
          chunk = '';
        }
      }
      await out.write(chunk);
      await out.sync();
    } finally {
      await out.close();
    }
    renameSync(tmp, this.path);
    fsyncDir(dirname(this.path));
    await this.handle.close();
    this.handle = await open(this.path, 'a', 0o600);
    this.bytes = (await this.handle.stat()).size;
    this.compactedBytes = this.bytes;
  }
}
