/**
 * The journal's files as bytes: records one JSON object per line, snapshots of such records, and
 * the writes and fsyncs that make them durable (a short write is an error, a new file's folder is
 * synced). Shared by the journal (journal.ts) and the embedded stores that read their own files.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { KylixError } from '../errors.js';

/**
 * A snapshot written as one JSON record per line, for callers whose live state is best described
 * by the same records the journal holds (the embedded queue): `restoreRecords` reads it back.
 */
export function recordSnapshot(records: Iterable<unknown>): Iterable<string> {
  return (function* () {
    for (const record of records) yield `${JSON.stringify(record)}\n`;
  })();
}

/** Replays a snapshot written by `recordSnapshot`, one record at a time. */
export function restoreRecords(snapshot: Buffer, replay: (record: unknown) => void, label: string): void {
  let lineNo = 0;
  for (const { line } of splitLines(snapshot)) {
    lineNo++;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      // A snapshot is renamed into place only once complete, so no line of it may be torn.
      throw corrupt(label, 'its snapshot', lineNo);
    }
    replay(record);
  }
}

/** The error for a journal or snapshot file that cannot be parsed. */
export function corrupt(label: string, file: string, lineNo: number): KylixError {
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `${label}: ${file} is corrupt at line ${lineNo}; restore the data folder from a backup.`,
  );
}

/** Splits a buffer into its non-empty lines without making one string of it (snapshots can be large). */
export function* splitLines(buffer: Buffer): Generator<{ line: string; last: boolean }> {
  let start = 0;
  while (start < buffer.length) {
    let end = buffer.indexOf(0x0a, start);
    const last = end === -1;
    if (last) end = buffer.length;
    if (end > start)
      yield { line: buffer.toString('utf8', start, end), last: last || end + 1 >= buffer.length };
    start = end + 1;
  }
}

/** fsyncs a folder, so a file created or renamed in it is still there after a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes every buffer; a short write (a full disk) is an error, never a silently shorter file. */
export async function writeAll(file: FileHandle, buffers: Buffer[], size: number): Promise<void> {
  const { bytesWritten } = await file.writev(buffers);
  // A short write is what a disk that filled up mid-write gives.
  if (bytesWritten !== size)
    throw Object.assign(new Error(`short write (${bytesWritten} of ${size} bytes)`), { code: 'ENOSPC' });
}
