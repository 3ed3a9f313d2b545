/**
 * A bundle's content address. The CLI computes it before uploading and the server checks it on
 * receipt, so it lives in build/, which both may import.
 */
import { createHash } from 'node:crypto';

/** The digest of a bundle's bytes, as written in spec.bundle. */
export function digestOf(code: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(code).digest('hex')}`;
}
