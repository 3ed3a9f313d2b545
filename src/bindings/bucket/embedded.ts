/**
 * The embedded Bucket provider: a folder per bucket under the data folder (see embedded-index.ts
 * for what is inside and why). A put streams its body into a new blob file, hashing it as it goes,
 * fsyncs it, then commits the key in the bucket's index journal; it resolves once that is durable.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KylixError } from '../../errors.js';
import { checkDiskRoom } from '../../storage/disk-room.js';
import { checkRef, decodeCursor, encodeCursor } from '../arguments.js';
import { resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import {
  bodyChunks,
  checkConditional,
  checkDeleteKeys,
  checkListOptions,
  checkObjectKey,
  checkPartNumber,
  checkPutOptions,
  checkRange,
  conditionHolds,
  resolveRange,
} from './checks.js';
import { type BucketIndex, type IndexedObject, openBucketIndex } from './embedded-index.js';
import { abortUpload, completeUpload, createUpload, writePart } from './embedded-multipart.js';
import type {
  BucketGetResult,
  BucketListResult,
  BucketObject,
  BucketProvider,
  ByteRange,
  Checksums,
  Conditional,
  PutOptions,
  UploadedPart,
} from './interface.js';

/** Where the embedded provider keeps its buckets. */
export interface EmbeddedBucketConfig {
  dataDir: string;
}

/** Reads stream in chunks of this size. */
const READ_CHUNK = 256 * 1024;
/** Writes are gathered into chunks of this size, so many small body chunks cost few system calls. */
const WRITE_CHUNK = 1024 * 1024;

/** Opens the embedded Bucket provider under `config.dataDir` (buckets open on first use). */
export async function openEmbeddedBucket(config: EmbeddedBucketConfig): Promise<EmbeddedBucket> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Purges interrupted by a crash left their folders in the trash; finish them.
  await rm(join(config.dataDir, '.trash'), { recursive: true, force: true });
  return new EmbeddedBucket(config);
}

/** The checksums a listing carries: md5 only, known from a single-part etag (as on S3). */
const listedSums = (etag: string): Checksums => (etag.includes('-') ? {} : { md5: etag });

const toObject = (
  key: string,
  o: IndexedObject,
  include = { http: true, custom: true, sums: true },
): BucketObject => ({
  key,
  size: o.size,
  etag: o.etag,
  uploaded: o.uploaded,
  // The blob id: a new one for every put, never reused.
  version: o.blob,
  checksums: include.sums && o.sums ? { ...o.sums } : listedSums(o.etag),
  httpMetadata: include.http ? { ...o.httpMetadata } : {},
  customMetadata: include.custom ? { ...o.customMetadata } : {},
});

/** The embedded provider; see the file comment. */
export class EmbeddedBucket implements BucketProvider {
  readonly name = 'embedded';
  private readonly buckets = new Map<string, Promise<BucketIndex>>();
  private closed = false;

  constructor(private readonly config: EmbeddedBucketConfig) {}

  async ensure(ref: ResourceRef): Promise<void> {
    await this.bucket(ref);
  }

  /** 1. Close the bucket, 2. move its folder to the trash (atomic), 3. remove it. */
  async purge(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    const id = resourceIdentity(ref).path;
    const opening = this.buckets.get(id);
    this.buckets.delete(id);
    if (opening) await (await opening.catch(() => undefined))?.close();
    const trash = join(this.config.dataDir, '.trash');
    mkdirSync(trash, { recursive: true, mode: 0o700 });
    const doomed = join(trash, randomUUID());
    try {
      renameSync(this.folder(ref), doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  async health(): Promise<Health> {
    for (const opening of this.buckets.values()) {
      const broken = (await opening.catch((err: Error) => ({ broken: err }))).broken;
      if (broken) return { ok: false, message: `a bucket cannot write: ${broken.message}` };
    }
    return { ok: !this.closed, message: this.closed ? 'closed' : `embedded, in ${this.config.dataDir}` };
  }

  async put(
    ref: ResourceRef,
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options: PutOptions = {},
  ): Promise<BucketObject | null> {
    checkObjectKey(ref, key);
    const meta = checkPutOptions(options);
    const onlyIf = checkConditional(options.onlyIf);
    checkDiskRoom(
      this.config.dataDir,
      body instanceof Uint8Array ? body.byteLength : 0,
      'The embedded bucket',
    );
    const bucket = await this.bucket(ref);
    const id = randomUUID().replace(/-/g, '');
    const path = await bucket.newBlob(id);
    let file: FileHandle | undefined;
    try {
      file = await open(path, 'wx', 0o600);
      const hash = createHash('md5');
      let size = 0;
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      for await (const chunk of bodyChunks(body)) {
        hash.update(chunk);
        size += chunk.byteLength;
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= WRITE_CHUNK) {
          // A streamed body's size is known only as it arrives: the reserve is checked as it grows.
          if (!(body instanceof Uint8Array))
            checkDiskRoom(this.config.dataDir, pendingBytes, 'The embedded bucket');
          await writeAll(file, pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pending.length > 0) await writeAll(file, pending, pendingBytes);
      await file.sync();
      await file.close();
      file = undefined;
      const etag = hash.digest('hex');
      const object: IndexedObject = {
        blob: id,
        size,
        etag,
        uploaded: new Date().toISOString(),
        ...meta,
        sums: { ...options.checksums, md5: etag },
      };
      if (!(await bucket.commit(key, object, (previous) => conditionHolds(onlyIf, previous)))) {
        await bucket.abandon(id);
        return null;
      }
      return toObject(key, object);
    } catch (err) {
      await file?.close().catch(() => {});
      if (!(err as { committed?: boolean }).committed) await bucket.abandon(id);
      throw err;
    }
  }

  async get(
    ref: ResourceRef,
    key: string,
    options: { range?: ByteRange; onlyIf?: Conditional } = {},
  ): Promise<BucketGetResult | null> {
    checkObjectKey(ref, key);
    checkRange(options.range);
    const onlyIf = checkConditional(options.onlyIf);
    const bucket = await this.bucket(ref);
    // An overwrite may unlink the blob between the lookup and the open: then look the key up again.
    for (let attempt = 0; ; attempt++) {
      const indexed = bucket.objects.get(key);
      if (!indexed) return null;
      if (!conditionHolds(onlyIf, indexed)) return { object: toObject(key, indexed), body: null };
      const range = options.range ? resolveRange(options.range, indexed.size) : undefined;
      let file: FileHandle;
      try {
        file = await open(bucket.blobPath(indexed.blob), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
        throw err;
      }
      const offset = range?.offset ?? 0;
      const length = range?.length ?? indexed.size;
      const result = { object: toObject(key, indexed), body: readBlob(file, offset, length) };
      return range ? { ...result, range } : result;
    }
  }

  async head(ref: ResourceRef, key: string): Promise<BucketObject | null> {
    checkObjectKey(ref, key);
    const indexed = (await this.bucket(ref)).objects.get(key);
    return indexed ? toObject(key, indexed) : null;
  }

  async delete(ref: ResourceRef, keys: string | string[]): Promise<void> {
    const list = checkDeleteKeys(ref, keys);
    await (await this.bucket(ref)).delete(list);
  }

  /**
   * Walks the sorted keys from the prefix (or the cursor). With a delimiter, keys that hold it past
   * the prefix roll up into one delimited prefix, and the walk jumps past them all at once.
   */
  async list(
    ref: ResourceRef,
    options: Parameters<BucketProvider['list']>[1] = {},
  ): Promise<BucketListResult> {
    const { prefix, delimiter, limit, includeHttp, includeCustom } = checkListOptions(ref, options);
    const position = decodeCursor(options.cursor);
    const { keys, objects } = await this.bucket(ref);
    const order = keys.order();
    let i = keys.seek(prefix);
    // A cursor is "k<key>" (resume after that key) or "p<prefix>" (after everything under it).
    if (position?.startsWith('k')) i = Math.max(i, keys.seek(position.slice(1), true));
    else if (position?.startsWith('p')) i = Math.max(i, keys.seekPast(position.slice(1)));
    else if (position !== undefined) {
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'The list cursor is not one this binding returned.');
    }
    const result: BucketListResult = { objects: [], delimitedPrefixes: [], truncated: false };
    let last = '';
    while (i < order.length) {
      const key = order[i]!;
      if (!key.startsWith(prefix)) break;
      if (result.objects.length + result.delimitedPrefixes.length === limit) {
        result.truncated = true;
        result.cursor = encodeCursor(last);
        break;
      }
      const cut = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length);
      if (cut >= 0) {
        const folder = key.slice(0, cut + delimiter!.length);
        result.delimitedPrefixes.push(folder);
        last = `p${folder}`;
        i = keys.seekPast(folder);
        continue;
      }
      result.objects.push(
        toObject(key, objects.get(key)!, { http: includeHttp, custom: includeCustom, sums: false }),
      );
      last = `k${key}`;
      i++;
    }
    return result;
  }

  async createMultipartUpload(
    ref: ResourceRef,
    key: string,
    options: Pick<PutOptions, 'httpMetadata' | 'customMetadata'> = {},
  ): Promise<string> {
    checkObjectKey(ref, key);
    return createUpload(await this.bucket(ref), { key, ...checkPutOptions(options) });
  }

  async uploadPart(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
  ): Promise<UploadedPart> {
    checkObjectKey(ref, key);
    checkPartNumber(partNumber);
    checkDiskRoom(this.config.dataDir, body.byteLength, 'The embedded bucket');
    return writePart(await this.bucket(ref), key, uploadId, partNumber, body);
  }

  async completeMultipartUpload(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    parts: UploadedPart[],
  ): Promise<BucketObject> {
    checkObjectKey(ref, key);
    const { indexed } = await completeUpload(await this.bucket(ref), key, uploadId, parts);
    return toObject(key, indexed);
  }

  async abortMultipartUpload(ref: ResourceRef, key: string, uploadId: string): Promise<void> {
    checkObjectKey(ref, key);
    await abortUpload(await this.bucket(ref), key, uploadId);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.buckets.values()];
    this.buckets.clear();
    for (const opening of all) await (await opening.catch(() => undefined))?.close();
  }

  /** The folder of a bucket: names are DNS labels (checked), so the path stays under the data folder. */
  private folder(ref: ResourceRef): string {
    return join(this.config.dataDir, resourceIdentity(ref).path);
  }

  private bucket(ref: ResourceRef): Promise<BucketIndex> {
    checkRef(ref);
    if (this.closed)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded bucket provider is closed.');
    const id = resourceIdentity(ref).path;
    let opening = this.buckets.get(id);
    if (!opening) {
      opening = openBucketIndex(this.folder(ref));
      this.buckets.set(id, opening);
      // A failed open is not cached: the next call tries again.
      opening.catch(() => this.buckets.get(id) === opening && this.buckets.delete(id));
    }
    return opening;
  }
}

/** Writes every chunk; a short write or ENOSPC (a full disk) fails the put instead of storing less. */
async function writeAll(file: FileHandle, chunks: Uint8Array[], size: number): Promise<void> {
  let written: number;
  try {
    written = (await file.writev(chunks)).bytesWritten;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOSPC') throw diskFull(String((err as Error).message));
    throw err;
  }
  if (written !== size) throw diskFull(`short write, ${written} of ${size} bytes`);
}

function diskFull(detail: string): KylixError {
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `The embedded bucket cannot write: the disk is full (${detail}). Nothing was stored; free space on the node's data disk and retry.`,
  );
}

/** Streams `length` bytes of an open blob from `offset`, closing the file when done or abandoned. */
async function* readBlob(file: FileHandle, offset: number, length: number): AsyncGenerator<Uint8Array> {
  try {
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - position));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0)
        throw new KylixError('ERR_INTERNAL', 'A bucket object is shorter than its index says.');
      position += bytesRead;
      yield new Uint8Array(buffer.buffer, buffer.byteOffset, bytesRead);
    }
  } finally {
    await file.close();
  }
}
