/**
 * How a Workers cache entry lives in the KeyValue backend. The KeyValue ref is the namespace's
 * internal `caches` space (identity.ts), taken from the calling function's namespace by the
 * broker, never from the sandbox. Inside it, an entry's key is the cache's name, URI-encoded (it
 * then holds no "/"), a "/", and the SHA-256 of the request URL: the default cache's name is
 * empty, which caches.open() refuses, so no two (cache, URL) pairs share a key but by a SHA-256
 * collision, and the URL kept in the entry is compared on every read besides.
 */
import { createHash } from 'node:crypto';
import { KylixError } from '../../errors.js';
import { KV_LIMITS } from '../keyvalue/interface.js';

/** What a cache entry holds beside its body. */
export interface CacheHead {
  /** The request URL it was put under. */
  url: string;
  status: number;
  statusText: string;
  headers: [string, string][];
  /** The request's value of each header the response varies on (null: the request had none). */
  vary: [string, string | null][];
  /** When it was put, in ms since the epoch (for the Age header). */
  stored: number;
}

/** Limits of the cache, beside the KeyValue backend's own. */
export const CACHE_LIMITS = {
  /** Longest cache name given to caches.open(), in UTF-8 bytes. */
  maxNameBytes: 128,
  /** Longest request URL (the gateway's own URL limit is smaller). */
  maxUrlBytes: 16 * 1024,
  /** Status line, headers and vary values together, as JSON. */
  maxHeadBytes: 64 * 1024,
  /** Body and head together: one KeyValue value. */
  maxEntryBytes: KV_LIMITS.maxValueBytes,
  /**
   * What one namespace's caches hold at most, together (embedded backend): past it, the least
   * recently put entries are evicted, as a cache does. Any function has a cache without declaring
   * it, so it must not be a way to fill the node's memory.
   */
  maxNamespaceBytes: 32 * 1024 * 1024,
  /** Longest time to keep an entry (a year, as Cloudflare's edge caps max-age). */
  maxTtlSeconds: 365 * 24 * 3600,
};

/** The entry's key in the namespace's caches space; see the file comment. */
export function cacheKey(cacheName: string, url: string): string {
  if (Buffer.byteLength(cacheName) > CACHE_LIMITS.maxNameBytes)
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The cache name is longer than ${CACHE_LIMITS.maxNameBytes} bytes.`,
    );
  return `${encodeURIComponent(cacheName)}/${createHash('sha256').update(url).digest('hex')}`;
}

/** One stored value: 4 bytes of head length (big-endian), the head as JSON, the body. */
export function encodeEntry(head: CacheHead, body: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(head));
  if (json.byteLength > CACHE_LIMITS.maxHeadBytes)
    throw new KylixError(
      'ERR_BINDING_TOO_LARGE',
      `The response's headers are ${json.byteLength} bytes; a cache entry's limit is ${CACHE_LIMITS.maxHeadBytes}.`,
    );
  const size = 4 + json.byteLength + body.byteLength;
  if (size > CACHE_LIMITS.maxEntryBytes)
    throw new KylixError(
      'ERR_BINDING_TOO_LARGE',
      `The response is ${body.byteLength} bytes; a cache entry holds at most ${CACHE_LIMITS.maxEntryBytes - 4 - json.byteLength}.`,
    );
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(json.byteLength, 0);
  json.copy(out, 4);
  out.set(body, 4 + json.byteLength);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Reads a stored value back; undefined when it is not one encodeEntry() made. */
export function decodeEntry(value: Uint8Array): { head: CacheHead; body: Uint8Array } | undefined {
  if (value.byteLength < 4) return undefined;
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const length = buffer.readUInt32BE(0);
  if (4 + length > buffer.byteLength) return undefined;
  try {
    const head = JSON.parse(buffer.subarray(4, 4 + length).toString('utf8')) as CacheHead;
    return { head, body: new Uint8Array(value.subarray(4 + length)) };
  } catch {
    return undefined;
  }
}
