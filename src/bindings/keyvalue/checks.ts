/**
 * The KeyValue limits (KV_LIMITS), checked once here for every provider, so that the embedded store
 * and Redis refuse the same calls with the same errors.
 */
import { KylixError } from '../../errors.js';
import { checkKey, checkLimit, checkPrefix, checkRef, decodeCursor } from '../arguments.js';
import type { ResourceRef } from '../provider.js';
import { KV_LIMITS } from './interface.js';

/** A put, checked: metadata already serialized (it is stored as JSON by every provider). */
export interface CheckedPut {
  value: Uint8Array;
  /** The metadata as JSON, absent when there is none. */
  metadata?: string;
  /** Absolute, in seconds since the epoch (fractions allowed). */
  expiration?: number;
}

/** Checks a key of a KeyValue call. */
export function checkKvKey(ref: ResourceRef, key: string): void {
  checkRef(ref);
  checkKey(key, KV_LIMITS.maxKeyBytes);
}

/** Checks a put's arguments against KV_LIMITS. */
export function checkKvPut(
  ref: ResourceRef,
  key: string,
  value: Uint8Array,
  options: { expiration?: number; metadata?: unknown } = {},
): CheckedPut {
  checkKvKey(ref, key);
  if (!(value instanceof Uint8Array)) {
    throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'A KeyValue value must be bytes (a Uint8Array).');
  }
  if (value.byteLength > KV_LIMITS.maxValueBytes) {
    throw new KylixError(
      'ERR_BINDING_TOO_LARGE',
      `The value is ${value.byteLength} bytes; the limit is ${KV_LIMITS.maxValueBytes} bytes.`,
    );
  }
  const checked: CheckedPut = { value };
  if (options.metadata !== undefined) {
    let json: string | undefined;
    try {
      json = JSON.stringify(options.metadata);
    } catch {
      json = undefined;
    }
    if (json === undefined) {
      throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'The metadata must be serializable as JSON.');
    }
    const bytes = Buffer.byteLength(json);
    if (bytes > KV_LIMITS.maxMetadataBytes) {
      throw new KylixError(
        'ERR_BINDING_TOO_LARGE',
        `The metadata is ${bytes} bytes as JSON; the limit is ${KV_LIMITS.maxMetadataBytes} bytes.`,
      );
    }
    checked.metadata = json;
  }
  if (options.expiration !== undefined) {
    const exp = options.expiration;
    // One second of slack below the floor: a TTL turned into an absolute time a moment ago still passes.
    const floorMs = Date.now() + (KV_LIMITS.minTtlSeconds - 1) * 1000;
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp * 1000 <= floorMs) {
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `The expiration ${String(exp)} is not in the future; give seconds since the epoch at least ${KV_LIMITS.minTtlSeconds} s ahead.`,
      );
    }
    checked.expiration = exp;
  }
  return checked;
}

/** A list call, checked: the page size, the prefix, and the key to resume after. */
export function checkKvList(
  ref: ResourceRef,
  options: { prefix?: string; limit?: number; cursor?: string } = {},
): { prefix: string; limit: number; after?: string } {
  checkRef(ref);
  return {
    prefix: checkPrefix(options.prefix, KV_LIMITS.maxKeyBytes),
    limit: checkLimit(options.limit, KV_LIMITS.maxListLimit),
    after: decodeCursor(options.cursor),
  };
}
