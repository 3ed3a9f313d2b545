/**
 * Argument checks every binding provider makes the same way, so a call that fails on one backend
 * fails on all of them, with the same KylixError, before anything is sent to a server.
 */
import { KylixError, quoteInput } from '../errors.js';
import { isDnsLabel } from '../resources/meta.js';
import type { ResourceRef } from './provider.js';

/** A lone surrogate cannot be encoded as UTF-8: two such keys would collapse into one stored key. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Throws unless the ref names a resource by DNS labels (so it is safe in a path or a Redis key). */
export function checkRef(ref: ResourceRef): void {
  for (const [field, value] of [
    ['namespace', ref.namespace],
    ['name', ref.name],
  ] as const) {
    if (!isDnsLabel(value)) {
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `The resource ${field} ${quoteInput(value)} is not a DNS label (lowercase letters, digits and "-").`,
      );
    }
  }
}

/** Throws unless `key` is a non-empty, well-formed string of at most `maxBytes` UTF-8 bytes. */
export function checkKey(key: string, maxBytes: number, what = 'key'): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', `The ${what} must be a non-empty string.`);
  }
  if (LONE_SURROGATE.test(key)) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The ${what} holds a lone UTF-16 surrogate, which UTF-8 cannot encode.`,
    );
  }
  const bytes = Buffer.byteLength(key);
  if (bytes > maxBytes) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The ${what} is ${bytes} bytes long; the limit is ${maxBytes} bytes (UTF-8).`,
    );
  }
}

/** Throws unless `prefix` is absent or a well-formed string of at most `maxBytes` UTF-8 bytes. */
export function checkPrefix(prefix: string | undefined, maxBytes: number): string {
  if (prefix === undefined || prefix === '') return '';
  checkKey(prefix, maxBytes, 'prefix');
  return prefix;
}

/** The page size: `limit` when it is a whole number from 1 to `max`, else `max` when absent. */
export function checkLimit(limit: number | undefined, max: number): number {
  if (limit === undefined) return max;
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The list limit must be a whole number from 1 to ${max}.`,
    );
  }
  return limit;
}

/** An opaque cursor that resumes a listing after `position` (a key, or a tagged key). */
export function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

/** The position a cursor from encodeCursor holds; a cursor that is not one is the caller's error. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const position = typeof cursor === 'string' ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (position === '' || encodeCursor(position) !== cursor) {
    throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'The list cursor is not one this binding returned.');
  }
  return position;
}
