/**
 * Multipart uploads of the embedded Bucket provider. An upload is a folder in its bucket's folder,
 * `uploads/<id>/` (the id is 32 random hex digits, checked before it names a path), holding
 * `upload.json` (its key and metadata) and each part as `<n>` beside `<n>.json` (its etag and
 * size), each written, synced and renamed into place so a crash leaves a part whole or absent.
 * Completing first claims the folder (renames it to `<id>.completing-<ms>-<rand>`, one step), so
 * no part can be replaced and no second completion or abort can start while it copies; it then
 * streams the parts into one new blob, checking each part's bytes against the etag the caller
 * listed, and commits it as a put does. A completion that fails gives the folder back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KylixError } from '../../errors.js';
import { checkDiskRoom } from '../../storage/disk-room.js';
import { syncDir } from '../../storage/journal-files.js';
import { checkCompletedParts, multipartEtag, noSuchUpload, partTooSmall } from './checks.js';
import type { BucketIndex, IndexedObject } from './embedded-index.js';
import { BUCKET_LIMITS, type BucketObject, type UploadedPart } from './interface.js';

/** What upload.json holds. */
interface UploadRecord {
  key: string;
  httpMetadata: BucketObject['httpMetadata'];
  customMetadata: Record<string, string>;
}

const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** Parts are copied into the object in chunks of this size. */
const COPY_CHUNK = 1024 * 1024;
/** An upload neither completed nor aborted is aborted this long after it began (as R2 does after 7 days). */
export const UPLOAD_LIFETIME_MS = 7 * 24 * 3600 * 1000;
/** Uploads one bucket may have in progress at once. */
export const MAX_OPEN_UPLOADS = 1000;

function uploadDir(bucket: BucketIndex, uploadId: string): string {
  return join(bucket.dir, 'uploads', uploadId);
}

/** Writes `bytes` to `path` durably: a synced temporary file renamed into place. */
async function writeDurably(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const file = await open(tmp, 'wx', 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** The upload `uploadId` of `key`, or ERR_NOT_FOUND when there is none. */
async function openUpload(bucket: BucketIndex, key: string, uploadId: string): Promise<UploadRecord> {
  if (!UPLOAD_ID.test(uploadId)) throw noSuchUpload(key);
  let record: UploadRecord;
  const path = join(uploadDir(bucket, uploadId), 'upload.json');
  try {
    record = JSON.parse(await readFile(path, 'utf8'));
    // Past its lifetime it is aborted, whether or not a sweep has removed its files yet.
    if (Date.now() - (await stat(path)).mtimeMs > UPLOAD_LIFETIME_MS) throw noSuchUpload(key);
  } catch {
    throw noSuchUpload(key);
  }
  if (record.key !== key) throw noSuchUpload(key);
  return record;
}

/**
 * Aborts the bucket's uploads older than UPLOAD_LIFETIME_MS; answers how many are left. A function
 * that begins uploads and never ends them must not fill the disk.
 */
async function expireUploads(bucket: BucketIndex, now = Date.now()): Promise<number> {
  let ids: string[];
  try {
    ids = await readdir(join(bucket.dir, 'uploads'));
  } catch {
    return 0;
  }
  let open = 0;
  for (const id of ids) {
    if (id.includes('.removed-') || stuckCompletion(id, now))
      await rm(join(bucket.dir, 'uploads', id), { recursive: true, force: true });
    if (!UPLOAD_ID.test(id)) continue;
    // When it began: its record's time, or its folder's while the record is being written.
    const dir = uploadDir(bucket, id);
    const began = await stat(join(dir, 'upload.json')).then(
      (s) => s.mtimeMs,
      () =>
        stat(dir).then(
          (s) => s.mtimeMs,
          () => now,
        ),
    );
    if (now - began > UPLOAD_LIFETIME_MS) await removeUpload(dir);
    else open++;
  }
  return open;
}

/** A claimed folder a completion left behind (the node stopped mid-copy): gone after a day. */
function stuckCompletion(name: string, now: number): boolean {
  const claimed = /\.completing-(\d+)-/.exec(name);
  return claimed !== null && now - Number(claimed[1]) > 86_400_000;
}

/**
 * Removes an upload's folder: renamed out of the way first (one step), so a part being written
 * into it at that moment cannot keep the removal from finishing or leave half a folder behind.
 */
async function removeUpload(dir: string): Promise<void> {
  const doomed = `${dir}.removed-${randomBytes(4).toString('hex')}`;
  try {
    await rename(dir, doomed);
  } catch {
    return;
  }
  await rm(doomed, { recursive: true, force: true }).catch(() => {});
}

/** Each bucket's uploads being created, one at a time, so that many at once cannot pass the cap together. */
const creating = new WeakMap<BucketIndex, Promise<unknown>>();

/** Starts an upload: its folder and record, durable before the id is handed out. */
export function createUpload(bucket: BucketIndex, record: UploadRecord): Promise<string> {
  const next = (creating.get(bucket) ?? Promise.resolve()).then(
    () => startUpload(bucket, record),
    () => startUpload(bucket, record),
  );
  creating.set(bucket, next);
  return next;
}

async function startUpload(bucket: BucketIndex, record: UploadRecord): Promise<string> {
  if ((await expireUploads(bucket)) >= MAX_OPEN_UPLOADS)
    throw new KylixError(
      'ERR_TOO_MANY_REQUESTS',
      `The bucket has ${MAX_OPEN_UPLOADS} multipart uploads in progress, the most it may have: complete or abort some (an upload is aborted ${UPLOAD_LIFETIME_MS / 86_400_000} days after it began).`,
    );
  const uploadId = randomBytes(16).toString('hex');
  const dir = uploadDir(bucket, uploadId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeDurably(join(dir, 'upload.json'), JSON.stringify(record));
  await syncDir(dir);
  await syncDir(join(bucket.dir, 'uploads'));
  return uploadId;
}

/** Stores part `partNumber` (replacing an earlier one of that number). */
export async function writePart(
  bucket: BucketIndex,
  key: string,
  uploadId: string,
  partNumber: number,
  body: Uint8Array,
): Promise<UploadedPart> {
  await openUpload(bucket, key, uploadId);
  const dir = uploadDir(bucket, uploadId);
  const etag = createHash('md5').update(body).digest('hex');
  await writeDurably(join(dir, String(partNumber)), body);
  await writeDurably(join(dir, `${partNumber}.json`), JSON.stringify({ etag, size: body.byteLength }));
  await syncDir(dir);
  return { partNumber, etag };
}

/** Joins the listed parts into one object and commits it; answers the stored object. */
export async function completeUpload(
  bucket: BucketIndex,
  key: string,
  uploadId: string,
  given: UploadedPart[],
): Promise<{ indexed: IndexedObject }> {
  const record = await openUpload(bucket, key, uploadId);
  const parts = checkCompletedParts(given);
  const dir = uploadDir(bucket, uploadId);
  // What the parts' records say is checked first, so that a wrong list fails before any copying.
  let total = 0;
  for (const [i, part] of parts.entries()) {
    const stored = await readFile(join(dir, `${part.partNumber}.json`), 'utf8').then(
      (t) => JSON.parse(t) as { etag: string; size: number },
      () => undefined,
    );
    if (!stored || stored.etag !== part.etag) throw wrongPart(key, part);
    if (i < parts.length - 1 && stored.size < BUCKET_LIMITS.minPartBytes)
      throw partTooSmall(part.partNumber, stored.size);
    total += stored.size;
  }
  // The object is a copy of the parts: it needs their room again.
  checkDiskRoom(bucket.dir, total, 'The embedded bucket');
  const claimed = `${dir}.completing-${Date.now()}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(dir, claimed);
  } catch {
    // Completed, aborted or expired since it was opened.
    throw noSuchUpload(key);
  }
  // 1. Copy the parts into a new blob, 2. sync it, 3. commit the key, 4. drop the upload.
  const blob = randomBytes(16).toString('hex');
  let size = 0;
  try {
    const path = await bucket.newBlob(blob);
    const out = await open(path, 'wx', 0o600);
    try {
      for (const [i, part] of parts.entries()) {
        const bytes = await copyPart(join(claimed, String(part.partNumber)), out, key, part);
        if (i < parts.length - 1 && bytes < BUCKET_LIMITS.minPartBytes)
          throw partTooSmall(part.partNumber, bytes);
        size += bytes;
      }
      await out.sync();
    } finally {
      await out.close();
    }
  } catch (err) {
    await bucket.abandon(blob);
    await rename(claimed, dir).catch(() => {});
    throw err;
  }
  const indexed: IndexedObject = {
    blob,
    size,
    etag: multipartEtag(parts.map((p) => p.etag)),
    uploaded: new Date().toISOString(),
    httpMetadata: record.httpMetadata,
    customMetadata: record.customMetadata,
    sums: {},
  };
  try {
    await bucket.commit(key, indexed);
  } catch (err) {
    // Not committed: the upload is given back, as for any other failure. Committed in memory (its
    // record waits for room on a full disk): the upload is over all the same.
    if (!(err as { committed?: boolean }).committed) {
      await bucket.abandon(blob);
      await rename(claimed, dir).catch(() => {});
      throw err;
    }
    await rm(claimed, { recursive: true, force: true });
    throw err;
  }
  await rm(claimed, { recursive: true, force: true });
  return { indexed };
}

/**
 * Appends one part's file to `out`; answers its size. Its bytes must be the ones the etag names: the
 * object is made only of what the caller listed, whatever happened to the part's files before.
 */
async function copyPart(path: string, out: FileHandle, key: string, part: UploadedPart): Promise<number> {
  const input = await open(path, 'r').catch(() => {
    throw wrongPart(key, part);
  });
  const md5 = createHash('md5');
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      md5.update(buffer.subarray(0, bytesRead));
      await out.write(buffer, 0, bytesRead);
      size += bytesRead;
    }
  } finally {
    await input.close();
  }
  if (md5.digest('hex') !== part.etag) throw wrongPart(key, part);
  return size;
}

function wrongPart(key: string, part: UploadedPart): KylixError {
  return Object.assign(noSuchUpload(key), {
    message: `Part ${part.partNumber} of this upload was not uploaded with etag "${part.etag}".`,
  });
}

/** Drops an upload and its parts; an upload that is not there is already gone. */
export async function abortUpload(bucket: BucketIndex, key: string, uploadId: string): Promise<void> {
  try {
    await openUpload(bucket, key, uploadId);
  } catch {
    return;
  }
  await removeUpload(uploadDir(bucket, uploadId));
}
