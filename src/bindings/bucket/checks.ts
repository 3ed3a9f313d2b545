/**
 * The Bucket limits (BUCKET_LIMITS) and argument rules, checked once here for every provider, so
 * that the embedded folder and S3 refuse the same calls with the same errors.
 */
import { KylixError } from '../../errors.js';
import { checkKey, checkLimit, checkPrefix, checkRef } from '../arguments.js';
import type { ResourceRef } from '../provider.js';
import { BUCKET_LIMITS, type BucketObject, type ByteRange } from './interface.js';

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
    yield body;
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
