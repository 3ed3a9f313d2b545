/**
 * Content-addressed function bundles: stored once under their sha256, so a revision names its exact
 * code and re-applying unchanged code uploads and changes nothing. On a fleet the bundles live in
 * the shared state store and each node keeps a copy in its data folder.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../build/digest.js';
import { KylixError } from '../errors.js';

/** The largest bundle an installation accepts (env KYLIX_MAX_BUNDLE_BYTES; default 10 MiB, source maps included). */
export const MAX_BUNDLE_BYTES = Number(process.env.KYLIX_MAX_BUNDLE_BYTES) || 10 * 1024 * 1024;

/** Refuses a bundle over the size limit, with what to do about it. */
export function checkBundleSize(bytes: number): void {
  if (bytes > MAX_BUNDLE_BYTES) throw bundleTooLarge(bytes);
}

/** The 413 for a bundle over the limit (`bytes` unknown when a chunked upload ran past it). */
export function bundleTooLarge(bytes: number | undefined): KylixError {
  return new KylixError(
    'ERR_BUNDLE_TOO_LARGE',
    `The function bundle is ${bytes === undefined ? 'larger than' : `${(bytes / 2 ** 20).toFixed(1)} MiB, over`} this installation's limit of ${(MAX_BUNDLE_BYTES / 2 ** 20).toFixed(1)} MiB. Leave large assets out of the code (put them in a Bucket) or trim dependencies.`,
  );
}

/** Where a fleet keeps bundles so that every node can run what any node was given. */
export interface SharedBundles {
  getBundle(digest: string): Promise<Buffer | undefined>;
  putBundle(digest: string, code: Buffer): Promise<void>;
}

/** See the file comment. With `shared`, this folder is a node's cache of the fleet's bundles. */
export class BundleStore {
  constructor(
    private readonly dir: string,
    private readonly shared?: SharedBundles,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The file a digest is stored in (an ES module). */
  path(digest: string): string {
    const hex = /^sha256:([a-f0-9]{64})$/.exec(digest)?.[1];
    if (!hex)
      throw new KylixError('ERR_BAD_REQUEST', `"${digest}" is not a bundle digest (sha256:<64 hex digits>).`);
    return join(this.dir, `${hex}.mjs`);
  }

  /** Whether the bundle is here, fetching it from the fleet's store into this node's folder if needed. */
  async has(digest: string): Promise<boolean> {
    if (existsSync(this.path(digest))) return true;
    const code = await this.shared?.getBundle(digest);
    if (!code || digestOf(code) !== digest) return false;
    this.write(digest, code);
    return true;
  }

  /** Stores a bundle (for every node, when shared) and returns its digest; `expected`, when given, must match. */
  async put(code: Buffer, expected?: string): Promise<string> {
    const digest = digestOf(code);
    if (expected && expected !== digest) {
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `The bundle's digest is ${digest}, not ${expected} as declared; the upload was damaged. Apply again.`,
      );
    }
    await this.shared?.putBundle(digest, code);
    this.write(digest, code);
    return digest;
  }

  private write(digest: string, code: Buffer): void {
    const file = this.path(digest);
    if (existsSync(file)) return;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code, { mode: 0o600 });
    renameSync(tmp, file);
  }
}
