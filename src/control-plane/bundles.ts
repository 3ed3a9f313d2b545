/**
 * Content-addressed function bundles: stored once under their sha256, so a revision names its exact
 * code and re-applying unchanged code uploads and changes nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KylixError } from '../errors.js';

/** The largest bundle an installation accepts (env KYLIX_MAX_BUNDLE_BYTES; default 10 MiB, source maps included). */
export const MAX_BUNDLE_BYTES = Number(process.env.KYLIX_MAX_BUNDLE_BYTES) || 10 * 1024 * 1024;

/** Refuses a bundle over the size limit, with what to do about it. */
export function checkBundleSize(bytes: number): void {
  if (bytes > MAX_BUNDLE_BYTES)
    throw new KylixError(
      'ERR_BUNDLE_TOO_LARGE',
      `The function bundle is ${(bytes / 2 ** 20).toFixed(1)} MiB, over this installation's limit of ${(MAX_BUNDLE_BYTES / 2 ** 20).toFixed(1)} MiB. Leave large assets out of the code (put them in a Bucket) or trim dependencies.`,
    );
}

/** The digest of a bundle's bytes, as written in spec.bundle. */
export function digestOf(code: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(code).digest('hex')}`;
}

/** See the file comment. */
export class BundleStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The file a digest is stored in (an ES module). */
  path(digest: string): string {
    const hex = /^sha256:([a-f0-9]{64})$/.exec(digest)?.[1];
    if (!hex)
      throw new KylixError('ERR_BAD_REQUEST', `"${digest}" is not a bundle digest (sha256:<64 hex digits>).`);
    return join(this.dir, `${hex}.mjs`);
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  /** Stores a bundle and returns its digest; `expected`, when given, must match. */
  put(code: Buffer, expected?: string): string {
    const digest = digestOf(code);
    if (expected && expected !== digest) {
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `The bundle's digest is ${digest}, not ${expected} as declared; the upload was damaged. Apply again.`,
      );
    }
    const file = this.path(digest);
    if (!existsSync(file)) {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, code, { mode: 0o600 });
      renameSync(tmp, file);
    }
    return digest;
  }
}
