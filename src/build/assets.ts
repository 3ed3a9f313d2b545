/**
 * Reads a Function's assets folder into an asset manifest (URL path → content address, size,
 * Content-Type) the way `kylix apply` uploads it. The manifest depends on the files alone (sorted
 * paths, no times, no absolute paths), so the same folder anywhere gives the same digest and
 * makes no new revision.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { lookup } from 'mime-types';
import { KylixError } from '../errors.js';
import {
  type AssetManifest,
  MAX_ASSET_FILE_BYTES,
  MAX_ASSET_FILES,
  MAX_ASSETS_TOTAL_BYTES,
} from '../resources/assets.js';
import { formatBytes } from '../resources/limits.js';
import { digestOf } from './digest.js';

/** One file to upload. */
export interface AssetFile {
  /** The URL path it is served at ("/css/site.css"). */
  path: string;
  /** Where it is on disk. */
  file: string;
  digest: string;
  size: number;
}

/** A read assets folder: its manifest (and that manifest's bytes and digest) and its files. */
export interface AssetBuild {
  manifest: AssetManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  files: AssetFile[];
}

/** Names never served: version control and editor leftovers, and the ignore file itself (as Workers). */
const ALWAYS_IGNORED = new Set(['.git', '.DS_Store', 'node_modules', '.assetsignore', '.kylix']);

/** The Content-Type of a path, with a charset for text (as Workers sends them). */
export function contentTypeOf(path: string): string {
  const type = lookup(path) || 'application/octet-stream';
  return /^text\/|^application\/(javascript|json|xml)|\+xml$|\+json$/.test(type)
    ? `${type}; charset=utf-8`
    : type;
}

/** Patterns of .assetsignore: one per line, "*" within a name segment, a trailing "/" for folders. */
function ignoreMatcher(dir: string): (rel: string) => boolean {
  let lines: string[] = [];
  try {
    lines = readFileSync(join(dir, '.assetsignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  } catch {
    // no ignore file
  }
  const patterns = lines.map((l) => {
    const body = l.replace(/^\//, '').replace(/\/$/, '');
    const re = body.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
    // Anchored at the root when the pattern has a "/", else any segment matches (as .gitignore).
    return new RegExp(body.includes('/') ? `^${re}(/|$)` : `(^|/)${re}(/|$)`);
  });
  return (rel) => patterns.some((p) => p.test(rel));
}

/** Reads `dir` into an AssetBuild; refuses a missing folder and folders over the limits. */
export function readAssets(dir: string, label = dir): AssetBuild {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new KylixError(
      'ERR_BUILD_FAILED',
      `spec.assets.directory ${label} is not a folder. It must name a folder relative to the manifest.`,
    );
  }
  const ignored = ignoreMatcher(dir);
  const files: AssetFile[] = [];
  let total = 0;
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (ALWAYS_IGNORED.has(entry.name)) continue;
      const file = join(folder, entry.name);
      const rel = relative(dir, file).split(sep).join('/');
      if (ignored(rel)) continue;
      if (entry.isDirectory()) {
        walk(file);
        continue;
      }
      if (!entry.isFile()) continue;
      const bytes = readFileSync(file);
      if (bytes.length > MAX_ASSET_FILE_BYTES)
        throw new KylixError(
          'ERR_BUILD_FAILED',
          `The asset ${rel} is ${formatBytes(bytes.length)}, over the limit of ${formatBytes(MAX_ASSET_FILE_BYTES)} per file. Put it in a Bucket, or list it in ${label}/.assetsignore.`,
        );
      total += bytes.length;
      files.push({ path: `/${rel}`, file, digest: digestOf(bytes), size: bytes.length });
      if (files.length > MAX_ASSET_FILES)
        throw new KylixError(
          'ERR_BUILD_FAILED',
          `${label} holds more than ${MAX_ASSET_FILES} files, the limit for a Function's assets. Leave some out with ${label}/.assetsignore.`,
        );
    }
  };
  walk(dir);
  if (total > MAX_ASSETS_TOTAL_BYTES)
    throw new KylixError(
      'ERR_BUILD_FAILED',
      `The assets in ${label} are ${formatBytes(total)} together, over the limit of ${formatBytes(MAX_ASSETS_TOTAL_BYTES)}. Put large files in a Bucket.`,
    );
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: AssetManifest = {
    version: 1,
    files: Object.fromEntries(
      files.map((f) => [f.path, { digest: f.digest, size: f.size, type: contentTypeOf(f.path) }]),
    ),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, manifestBytes, manifestDigest: digestOf(manifestBytes), files };
}
