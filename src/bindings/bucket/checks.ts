/**
 * The Bucket limits (BUCKET_LIMITS) and argument rules, checked once here for every provider, so
 * that the embedded folder and S3 refuse the same calls with the same errors.
 */
import { createHash } from 'node:crypto';
import { setImmediate as yieldToOthers } from 'node:timers/promises';
import { KylixError } from '../../errors.js';
import { checkKey, checkLimit, checkPrefix, checkRef } from '../arguments.js';
import type { ResourceRef } from '../provider.js';
import {
  BUCKET_LIMITS,
  type BucketObject,
  type ByteRange,
  CHECKSUM_ALGORITHMS,
  type Checksums,
  type Conditional,
  type UploadedPart,
} from './interface.js';

/** Bytes of a body hashed (or handed on) at a time, between which other work runs. */
const HASH_SLICE_BYTES = 1024 * 1024;

/** The httpMetadata fields a bucket stores (R2's). */
export const HTTP_FIELDS = [
  'contentType',
  'contentLanguage',
  'contentDisposition',
  'contentEncoding',
  'cacheControl',
] as const;

/** Checks an object key of a Bucket call. */
export function checkObjectKey(ref: ResourceRef, key: string): void {
  checkRef(ref);
  checkKey(key, BUCKET_LIMITS.maxKeyBytes);
}

/** Checks a put's metadata; returns copies holding only the known, set fields. */
export function checkPutOptions(options: {
  httpMetadata?: BucketObject['httpMetadata'];
  customMetadata?: Record<string, string>;
}): Pick<BucketObject, 'httpMetadata' | 'customMetadata'> {
  const httpMetadata: BucketObject['httpMetadata'] = {};
  for (const field of HTTP_FIELDS) {
    const value = options.httpMetadata?.[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || /[\r\n]/.test(value)) {
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', `httpMetadata.${field} must be a one-line string.`);
    }
    httpMetadata[field] = value;
  }
  const customMetadata: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of Object.entries(options.customMetadata ?? {})) {
    if (typeof v !== 'string' || k === '') {
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'customMetadata maps non-empty names to strings.');
    }
    checkKey(k, BUCKET_LIMITS.maxCustomMetadataBytes, 'customMetadata name');
    if (v !== '') checkKey(v, BUCKET_LIMITS.maxCustomMetadataBytes, `customMetadata value of "${k}"`);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    customMetadata[k] = v;
  }
  if (bytes > BUCKET_LIMITS.maxCustomMetadataBytes) {
    throw new KylixError(
      'ERR_BINDING_TOO_LARGE',
      `customMetadata is ${bytes} bytes; the limit is ${BUCKET_LIMITS.maxCustomMetadataBytes} bytes (names and values, UTF-8).`,
    );
  }
  return { httpMetadata, customMetadata };
}

/** Throws unless a range is made of whole, non-negative numbers (length and suffix at least 1). */
export function checkRange(range: ByteRange | undefined): void {
  if (range === undefined) return;
  const whole = (n: unknown, min: number) => typeof n === 'number' && Number.isSafeInteger(n) && n >= min;
  const ok =
    'suffix' in range
      ? whole(range.suffix, 1)
      : whole(range.offset, 0) && (range.length === undefined || whole(range.length, 1));
  if (!ok) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The range ${JSON.stringify(range)} is not valid: give { offset, length? } or { suffix } in whole bytes.`,
    );
  }
}

/** The bytes a range selects of an object of `size` bytes; one that starts past the end is refused. */
export function resolveRange(range: ByteRange, size: number): { offset: number; length: number } {
  if ('suffix' in range) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  if (range.offset >= size) {
    throw new KylixError(
      'ERR_RANGE_NOT_SATISFIABLE',
      `The range starts at byte ${range.offset}, but the object has ${size} bytes.`,
    );
  }
  return { offset: range.offset, length: Math.min(range.length ?? size, size - range.offset) };
}

/** A list call, checked. */
export function checkListOptions(
  ref: ResourceRef,
  options: { prefix?: string; delimiter?: string; limit?: number; include?: string[] } = {},
): { prefix: string; delimiter?: string; limit: number; includeHttp: boolean; includeCustom: boolean } {
  checkRef(ref);
  const delimiter = options.delimiter === '' ? undefined : options.delimiter;
  if (delimiter !== undefined) checkKey(delimiter, BUCKET_LIMITS.maxKeyBytes, 'delimiter');
  return {
    prefix: checkPrefix(options.prefix, BUCKET_LIMITS.maxKeyBytes),
    delimiter,
    limit: checkLimit(options.limit, BUCKET_LIMITS.maxListLimit),
    includeHttp: options.include?.includes('httpMetadata') ?? false,
    includeCustom: options.include?.includes('customMetadata') ?? false,
  };
}

/** The chunks of a put's body, checked to be bytes as they stream in. */
export async function* bodyChunks(body: AsyncIterable<Uint8Array> | Uint8Array): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    // In slices (views, not copies): a provider that awaits a write per slice lets other work run between them.
    for (let at = 0; at < body.byteLength; at += HASH_SLICE_BYTES)
      yield body.subarray(at, at + HASH_SLICE_BYTES);
    return;
  }
  if (body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      'A bucket put takes bytes or an async iterable of bytes.',
    );
  }
  for await (const chunk of body) {
    if (!(chunk instanceof Uint8Array)) {
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        'A bucket put body yielded something other than bytes.',
      );
    }
    yield chunk;
  }
}

/** Keys of a delete call, checked: one or many. */
export function checkDeleteKeys(ref: ResourceRef, keys: string | string[]): string[] {
  const list = Array.isArray(keys) ? keys : [keys];
  for (const key of list) checkObjectKey(ref, key);
  return [...new Set(list)];
}

/**
 * An etag without its quotes and weak prefix: as given to onlyIf or complete(), or as S3 answers
 * it (the interface's etags are bare).
 */
export function bareEtag(etag: string): string {
  return etag.replace(/^(W\/)?"|"$/g, '');
}

/** Checks an onlyIf (dates must be dates); returns it with bare etags, or undefined when absent. */
export function checkConditional(onlyIf: Conditional | undefined): Conditional | undefined {
  if (!onlyIf) return undefined;
  for (const field of ['uploadedBefore', 'uploadedAfter'] as const) {
    const v = onlyIf[field];
    if (v !== undefined && !Number.isFinite(Date.parse(v)))
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', `onlyIf.${field} must be a date.`);
  }
  return {
    ...onlyIf,
    ...(onlyIf.etagMatches ? { etagMatches: onlyIf.etagMatches.map(bareEtag) } : {}),
    ...(onlyIf.etagDoesNotMatch ? { etagDoesNotMatch: onlyIf.etagDoesNotMatch.map(bareEtag) } : {}),
  };
}

/**
 * Whether a precondition holds for `object` (null: there is none), as HTTP evaluates If-Match,
 * If-Unmodified-Since, If-None-Match and If-Modified-Since (RFC 9110 section 13.2.2).
 */
export function conditionHolds(
  c: Conditional | undefined,
  object: Pick<BucketObject, 'etag' | 'uploaded'> | null,
): boolean {
  if (!c) return true;
  const matches = (list: string[]) => object !== null && list.some((e) => e === '*' || e === object.etag);
  const time = (iso: string) => {
    const ms = Date.parse(iso);
    return c.secondsGranularity ? Math.floor(ms / 1000) : ms;
  };
  // To the second, "before" is If-Unmodified-Since: not modified after that second.
  const before = (a: number, b: number) => (c.secondsGranularity ? a <= b : a < b);
  if (c.etagMatches) {
    if (!matches(c.etagMatches)) return false;
  } else if (c.uploadedBefore && object && !before(time(object.uploaded), time(c.uploadedBefore)))
    return false;
  if (c.etagDoesNotMatch) {
    if (matches(c.etagDoesNotMatch)) return false;
  } else if (c.uploadedAfter && object && !(time(object.uploaded) > time(c.uploadedAfter))) return false;
  return true;
}

/**
 * Checks the digests a put was given against its body (R2 refuses a put whose md5 or sha does not
 * match); answers the digests to keep: md5 always, and each one given.
 */
export async function verifyChecksums(body: Uint8Array, expected: Checksums = {}): Promise<Checksums> {
  const algorithms = CHECKSUM_ALGORITHMS.filter((a) => a === 'md5' || expected[a] !== undefined);
  const hashes = algorithms.map((a) => createHash(a));
  // A slice at a time, letting other work run between slices: a body of tens of MiB hashed five
  // ways in one go held the supervisor's thread for half a second.
  for (let at = 0; at < body.byteLength; at += HASH_SLICE_BYTES) {
    if (at > 0) await yieldToOthers();
    const slice = body.subarray(at, at + HASH_SLICE_BYTES);
    for (const h of hashes) h.update(slice);
  }
  const out: Checksums = {};
  algorithms.forEach((algorithm, i) => {
    const actual = hashes[i]!.digest('hex');
    const given = expected[algorithm];
    if (given !== undefined && given.toLowerCase() !== actual)
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `The ${algorithm} given to put() does not match the body that arrived; nothing was stored.`,
      );
    out[algorithm] = actual;
  });
  return out;
}

/** Checks a part number: a whole number from 1 to 10000. */
export function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > BUCKET_LIMITS.maxPartNumber)
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `A part number must be a whole number from 1 to ${BUCKET_LIMITS.maxPartNumber}.`,
    );
}

/** The parts of a complete() call, checked (ascending part numbers, each once) and with bare etags. */
export function checkCompletedParts(parts: UploadedPart[]): UploadedPart[] {
  if (parts.length === 0)
    throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'complete() needs at least one uploaded part.');
  const sorted = parts.map((p) => ({ partNumber: p.partNumber, etag: bareEtag(p.etag) }));
  sorted.sort((a, b) => a.partNumber - b.partNumber);
  sorted.forEach((p, i) => {
    checkPartNumber(p.partNumber);
    if (i > 0 && sorted[i - 1]!.partNumber === p.partNumber)
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', `Part ${p.partNumber} is listed twice.`);
  });
  return sorted;
}

/** The error for a part but the last that is smaller than BUCKET_LIMITS.minPartBytes. */
export function partTooSmall(partNumber: number, size: number): KylixError {
  return new KylixError(
    'ERR_BINDING_BAD_ARGUMENTS',
    `Part ${partNumber} is ${size} bytes; every part but the last must be at least ${BUCKET_LIMITS.minPartBytes} bytes (5 MiB).`,
  );
}

/** The error for an upload id that is not (or no longer) an upload of this key in this bucket. */
export function noSuchUpload(key: string): KylixError {
  return new KylixError(
    'ERR_NOT_FOUND',
    `There is no multipart upload of "${key}" with that id (it was completed, aborted, or never made).`,
  );
}

/** S3's etag of a multipart object: the MD5 of the parts' binary MD5s, "-" and the part count. */
export function multipartEtag(partEtags: string[]): string {
  const hash = createHash('md5');
  for (const e of partEtags) hash.update(Buffer.from(e, 'hex'));
  return `${hash.digest('hex')}-${partEtags.length}`;
}
