/**
 * One embedded bucket's folder: its objects' bytes as blob files named by random ids (never by
 * key, so no key can reach outside the folder, whatever "/" or ".." it holds), and an index journal
 * (src/storage/journal.ts) mapping each key to its metadata and blob. A put becomes visible, and
 * durable, when its index record is synced; an overwrite swaps blob ids in that one record, so a
 * crash leaves either the old object or the new one, never a mix. Blobs no record points to (a put
 * that crashed before its record) are removed when the bucket is next opened.
 *
 *   <bucket>/index/journal.log, snapshot.jsonl
 *   <bucket>/blobs/<2 hex>/<32 hex>
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Journal, openJournal } from '../../storage/journal.js';
import { splitLines, syncDir } from '../../storage/journal-files.js';
import { SortedKeys } from '../../storage/sorted-keys.js';
import type { BucketObject, Checksums } from './interface.js';

/** What the index holds per key: the object's metadata and where its bytes are. */
export interface IndexedObject {
  blob: string;
  size: number;
  etag: string;
  uploaded: string;
  httpMetadata: BucketObject['httpMetadata'];
  customMetadata: Record<string, string>;
  /** The SHA digests the put was given, and md5 (absent for a multipart object and older records). */
  sums?: Checksums;
}

type IndexRecord = { s: number; o: 'p'; k: string; m: IndexedObject } | { s: number; o: 'd'; k: string };

/** Opens a bucket's folder (creating it), loads its index and starts collecting orphaned blobs. */
export async function openBucketIndex(dir: string): Promise<BucketIndex> {
  const index = new BucketIndex(dir);
  await index.open();
  return index;
}

/** One bucket's index; see the file comment. */
export class BucketIndex {
  readonly objects = new Map<string, IndexedObject>();
  readonly keys = new SortedKeys();
  /** Blob ids being written: not referenced yet, but not orphans either. */
  private readonly writing = new Set<string>();
  private readonly referenced = new Set<string>();
  private journal?: Journal;
  private seq = 0;
  private snapshotSeq = 0;
  private collecting: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {}

  get broken(): Error | undefined {
    return this.journal?.broken;
  }

  async open(): Promise<void> {
    mkdirSync(join(this.dir, 'blobs'), { recursive: true, mode: 0o700 });
    this.journal = await openJournal({
      dir: join(this.dir, 'index'),
      label: `The bucket at ${this.dir}`,
      snapshotFile: 'snapshot.jsonl',
      restore: (data) => {
        let header = true;
        for (const { line } of splitLines(data)) {
          if (header) {
            this.snapshotSeq = this.seq = (JSON.parse(line) as { seq: number }).seq;
            header = false;
          } else {
            const row = JSON.parse(line) as { k: string; m: IndexedObject };
            this.set(row.k, row.m);
          }
        }
      },
      replay: (record) => {
        const r = record as IndexRecord;
        if (r.s <= this.snapshotSeq) return;
        this.seq = r.s;
        if (r.o === 'p') this.set(r.k, r.m);
        else this.remove(r.k);
      },
      snapshot: () => {
        const seq = this.seq;
        const rows = [...this.objects];
        return (function* () {
          yield `${JSON.stringify({ kylix: 'bucket', seq })}\n`;
          for (const [k, m] of rows) yield `${JSON.stringify({ k, m })}\n`;
        })();
      },
    });
    this.collecting = this.collectOrphans();
  }

  /** A new blob's path; the blob counts as being written until commit() or abandon(). */
  async newBlob(id: string): Promise<string> {
    this.writing.add(id);
    const shard = join(this.dir, 'blobs', id.slice(0, 2));
    // A shard folder made just now must itself survive a crash, or the blob in it would not.
    if (await mkdir(shard, { recursive: true, mode: 0o700 })) await syncDir(join(this.dir, 'blobs'));
    return join(shard, id);
  }

  blobPath(id: string): string {
    return join(this.dir, 'blobs', id.slice(0, 2), id);
  }

  /**
   * Points `key` at a written and synced blob unless `precondition` refuses the object it would
   * replace (then answers false); resolves once durable, then drops the blob it replaced.
   * 1. sync the blob's folder (its new name must outlive a crash before the index points at it),
   * 2. update memory, 3. journal the record, 4. unlink the replaced blob.
   */
  async commit(
    key: string,
    object: IndexedObject,
    precondition: (previous: IndexedObject | null) => boolean = () => true,
  ): Promise<boolean> {
    await syncDir(join(this.dir, 'blobs', object.blob.slice(0, 2)));
    const previous = this.objects.get(key);
    // Checked and set with no await between: no other put of this key can land in between.
    if (!precondition(previous ?? null)) return false;
    this.journal?.writable();
    this.set(key, object);
    this.writing.delete(object.blob);
    try {
      await this.append({ s: ++this.seq, o: 'p', k: key, m: object });
    } catch (err) {
      // The index points at the blob now (and the record is written once a full disk has room):
      // the caller must not drop it.
      throw Object.assign(err as Error, { committed: true });
    }
    if (previous) await this.dropBlob(previous.blob);
    return true;
  }

  /** Forgets a blob that will never be committed (its put failed). */
  async abandon(id: string): Promise<void> {
    this.writing.delete(id);
    await this.dropBlob(id);
  }

  /** Deletes keys; resolves once durable (or once earlier writes are, when none existed), then drops blobs. */
  async delete(keys: string[]): Promise<void> {
    const gone: IndexedObject[] = [];
    const writes: Promise<void>[] = [];
    for (const key of keys) {
      const object = this.objects.get(key);
      if (!object) continue;
      gone.push(object);
      this.remove(key);
      writes.push(this.append({ s: ++this.seq, o: 'd', k: key }));
    }
    // Nothing to write: still wait for queued records, or an earlier delete of the same key may not be durable.
    if (writes.length === 0) writes.push(this.journal?.barrier() ?? Promise.resolve());
    await Promise.all(writes);
    for (const object of gone) await this.dropBlob(object.blob);
  }

  async close(): Promise<void> {
    await this.collecting;
    await this.journal?.close();
    this.journal = undefined;
  }

  private append(record: IndexRecord): Promise<void> {
    if (!this.journal) return Promise.reject(new Error(`the bucket at ${this.dir} is closed`));
    return this.journal.append(record);
  }

  private set(key: string, object: IndexedObject): void {
    const previous = this.objects.get(key);
    if (previous) this.referenced.delete(previous.blob);
    this.objects.set(key, object);
    this.referenced.add(object.blob);
    this.keys.add(key);
  }

  private remove(key: string): void {
    const previous = this.objects.get(key);
    if (previous) this.referenced.delete(previous.blob);
    this.objects.delete(key);
    this.keys.delete(key);
  }

  private async dropBlob(id: string): Promise<void> {
    // Readers that opened it keep reading (POSIX); a reader about to open it looks the key up again.
    await unlink(this.blobPath(id)).catch(() => {});
  }

  /** Removes blobs that no record points to and no put is writing (left by a crash mid-put). */
  private async collectOrphans(): Promise<void> {
    const blobs = join(this.dir, 'blobs');
    try {
      for (const shard of readdirSync(blobs)) {
        for (const id of readdirSync(join(blobs, shard))) {
          // Checked right before unlinking: a blob becomes referenced only while it is in `writing`.
          if (!this.referenced.has(id) && !this.writing.has(id)) await this.dropBlob(id);
        }
      }
    } catch {
      // Best effort: an orphan costs only disk space, and the next open tries again.
    }
  }
}
