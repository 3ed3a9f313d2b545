/**
 * Content-addressed function bundles: stored once under their sha256, so a revision names its exact
 * code and re-applying unchanged code uploads and changes nothing. On a fleet the bundles live in
 * the shared state store and each node keeps a copy in its data folder.
 *
 * Code reaches a node one of three ways, as the Function gives it: uploaded by `kylix apply`
 * (spec.bundle names its digest), inline (spec.code, its own bundle), or by reference
 * (spec.bundle: { url, sha256 }: fetched once per node and kept only if its digest matches).
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BucketProvider } from '../bindings/bucket/interface.js';
import { digestOf } from '../build/digest.js';
import { KylixError } from '../errors.js';
import { bundleDigestOf, type FunctionSpec } from '../resources/kinds.js';

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

/** How long fetching a bundle by URL may take. */
const FETCH_TIMEOUT_MS = 60_000;

/** The digest of a Function's (or revision's) code, whichever way it is given; undefined without code. */
export function codeDigestOf(spec: Pick<FunctionSpec, 'code' | 'bundle'>): string | undefined {
  if (spec.code !== undefined) return digestOf(spec.code);
  return bundleDigestOf(spec);
}

/** Where a fleet keeps bundles so that every node can run what any node was given. */
export interface SharedBundles {
  getBundle(digest: string): Promise<Buffer | undefined>;
  putBundle(digest: string, code: Buffer): Promise<void>;
  /** Where bundles too large for this store go (the installation's Bucket backend), given once the node opened it. */
  useBucket?(open: () => Promise<BucketProvider>): void;
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

  /**
   * Makes the code of a spec available on this node and returns its digest: inline code is
   * written as its own bundle, a bundle by reference is fetched (once) and verified, a digest
   * must be in this node's folder or the fleet's store. Throws ERR_NOT_READY saying what is
   * missing, or undefined when the spec gives no code at all.
   */
  async ensure(spec: Pick<FunctionSpec, 'code' | 'bundle'>): Promise<string | undefined> {
    if (spec.code !== undefined) {
      const digest = digestOf(spec.code);
      this.write(digest, Buffer.from(spec.code));
      return digest;
    }
    const digest = bundleDigestOf(spec);
    if (!digest || (await this.has(digest))) return digest;
    const url = typeof spec.bundle === 'object' ? spec.bundle.url : undefined;
    if (!url)
      throw new KylixError(
        'ERR_NOT_READY',
        `The bundle ${digest} is in no bundle store this node can reach. Apply the function with \`kylix apply -f\` (which uploads spec.source), or give spec.bundle.url or spec.code.`,
      );
    const code = await fetchBundle(url);
    const got = digestOf(code);
    if (got !== digest)
      throw new KylixError(
        'ERR_NOT_READY',
        `The bundle at ${url} has digest ${got}, not ${digest} as spec.bundle.sha256 says; it was not used. Publish the right file or correct the digest.`,
      );
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

/** Fetches a bundle by URL, refusing one over the size limit without reading it whole. */
async function fetchBundle(url: string): Promise<Buffer> {
  const fail = (why: string) =>
    new KylixError(
      'ERR_NOT_READY',
      `The bundle at ${url} could not be fetched: ${why}. Check spec.bundle.url.`,
    );
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (!res.ok || !res.body) throw fail(`HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_BUNDLE_BYTES) throw bundleTooLarge(declared);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (total > MAX_BUNDLE_BYTES) throw bundleTooLarge(undefined);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
