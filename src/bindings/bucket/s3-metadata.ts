/**
 * How the S3 provider maps R2-style object metadata onto S3's: S3 user metadata travels as HTTP
 * headers, so its names are lowercased and its values must be printable ASCII. Pairs that survive
 * that unchanged are stored as plain `x-amz-meta-<name>` headers (other S3 tools see them); the
 * rest are stored together, as base64url JSON, in one `x-amz-meta-kylix-meta` header, so every
 * name and value reads back exactly as written.
 */
import { createHash } from 'node:crypto';
import { type BucketObject, CHECKSUM_ALGORITHMS, type Checksums } from './interface.js';

/** The one metadata header holding the pairs that plain headers cannot carry. */
const PACKED = 'kylix-meta';
/** Set when the put gave no content type: S3 answers with a default one, which R2 would not show. */
const UNTYPED = 'kylix-untyped';
/** The digests the put was given (and md5), as "md5=<hex>;sha256=<hex>". */
const SUMS = 'kylix-sums';
/** Names starting "kylix-" are packed too, so a user's names never clash with the ones above. */
const PLAIN_NAME = /^(?!kylix-)[a-z0-9][a-z0-9_-]*$/;
const PLAIN_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** customMetadata as S3 user metadata (plus a mark when no content type was given). */
export function toS3Metadata(
  custom: Record<string, string>,
  http: BucketObject['httpMetadata'],
  sums: Checksums = {},
): Record<string, string> {
  const plain: Record<string, string> = {};
  if (http.contentType === undefined) plain[UNTYPED] = '1';
  const digests = Object.entries(sums).map(([a, hex]) => `${a}=${hex}`);
  if (digests.length > 0) plain[SUMS] = digests.join(';');
  const packed: Record<string, string> = {};
  for (const [name, value] of Object.entries(custom)) {
    if (PLAIN_NAME.test(name) && PLAIN_VALUE.test(value)) plain[name] = value;
    else packed[name] = value;
  }
  if (Object.keys(packed).length > 0) {
    plain[PACKED] = Buffer.from(JSON.stringify(packed)).toString('base64url');
  }
  return plain;
}

/** S3 user metadata back as customMetadata (a store may hand names back in another case). */
export function fromS3Metadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const custom: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) {
    const lower = name.toLowerCase();
    if (lower === UNTYPED || lower === SUMS) continue;
    if (lower !== PACKED) {
      custom[lower] = value;
      continue;
    }
    try {
      Object.assign(custom, JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    } catch {
      // Not ours after all (another tool wrote this header): keep it as it is.
      custom[lower] = value;
    }
  }
  return custom;
}

/** The S3 response fields that make up httpMetadata. */
export interface S3HttpFields {
  ContentType?: string;
  ContentLanguage?: string;
  ContentDisposition?: string;
  ContentEncoding?: string;
  CacheControl?: string;
}

/** httpMetadata as PutObject parameters. */
export function toS3Http(http: BucketObject['httpMetadata']): S3HttpFields {
  const fields: S3HttpFields = {};
  if (http.contentType !== undefined) fields.ContentType = http.contentType;
  if (http.contentLanguage !== undefined) fields.ContentLanguage = http.contentLanguage;
  if (http.contentDisposition !== undefined) fields.ContentDisposition = http.contentDisposition;
  if (http.contentEncoding !== undefined) fields.ContentEncoding = http.contentEncoding;
  if (http.cacheControl !== undefined) fields.CacheControl = http.cacheControl;
  return fields;
}

/**
 * httpMetadata from a HEAD or GET response. S3 answers every object with a Content-Type (its
 * default when the put gave none); the put's mark says to leave that out, as R2 would.
 */
export function fromS3Http(
  fields: S3HttpFields & { Metadata?: Record<string, string> },
): BucketObject['httpMetadata'] {
  const http: BucketObject['httpMetadata'] = {};
  const untyped = Object.keys(fields.Metadata ?? {}).some((n) => n.toLowerCase() === UNTYPED);
  if (fields.ContentType && !untyped) http.contentType = fields.ContentType;
  if (fields.ContentLanguage) http.contentLanguage = fields.ContentLanguage;
  if (fields.ContentDisposition) http.contentDisposition = fields.ContentDisposition;
  if (fields.ContentEncoding) http.contentEncoding = fields.ContentEncoding;
  if (fields.CacheControl) http.cacheControl = fields.CacheControl;
  return http;
}

/**
 * A time as `uploaded`, to the second: HEAD's Last-Modified header has no milliseconds while
 * listings do, and one object must show one time whichever call reports it.
 */
export function uploadedAt(date: Date | undefined): string {
  const ms = date?.getTime() ?? Date.now();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString();
}

/**
 * The checksums of an object from its S3 metadata: the digests its put stored, else md5 from a
 * single-part etag (a listing has only that).
 */
export function checksumsOf(etag: string, metadata?: Record<string, string>): Checksums {
  const stored = Object.entries(metadata ?? {}).find(([n]) => n.toLowerCase() === SUMS)?.[1];
  const sums: Checksums = {};
  for (const pair of stored?.split(';') ?? []) {
    const [algorithm, hex] = pair.split('=');
    if (
      hex &&
      /^[0-9a-f]+$/.test(hex) &&
      (CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm ?? '')
    )
      sums[algorithm as keyof Checksums] = hex;
  }
  if (!sums.md5 && !etag.includes('-') && /^[0-9a-f]{32}$/.test(etag)) sums.md5 = etag;
  return sums;
}

/**
 * An object's version on S3: derived from its etag and upload time, which every call (list
 * included) sees, so put, head, get and list agree without a HEAD per listed object.
 */
export function versionOf(etag: string, uploaded: string): string {
  return createHash('sha256').update(`${etag}\n${uploaded}`).digest('hex').slice(0, 32);
}
