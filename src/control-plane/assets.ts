/**
 * Loads a revision's static assets from the bundle store (where `kylix apply` uploaded them,
 * content-addressed): its asset manifest, and every file it names, fetched into this node's
 * folder first when the store is shared by a fleet. Tables are kept per manifest digest.
 */

import { readFile } from 'node:fs/promises';
import { KylixError } from '../errors.js';
import { type AssetsSpec, parseAssetManifest } from '../resources/assets.js';
import type { ServedAsset, ServedAssets } from '../resources/serving.js';
import type { BundleStore } from './bundles.js';

/** How many asset tables are kept in memory. */
const KEEP = 64;

/** See the file comment. */
export class AssetTables {
  private readonly tables = new Map<string, Promise<ReadonlyMap<string, ServedAsset>>>();

  constructor(private readonly bundles: BundleStore) {}

  /** The assets of spec.assets, ready to serve; undefined when there are none. */
  async load(spec: AssetsSpec | undefined): Promise<ServedAssets | undefined> {
    if (!spec) return undefined;
    if (!spec.manifest)
      throw new KylixError(
        'ERR_NOT_READY',
        'spec.assets has no uploaded manifest: apply it with `kylix apply -f`, which uploads spec.assets.directory.',
      );
    let files = this.tables.get(spec.manifest);
    if (!files) {
      files = this.read(spec.manifest);
      this.tables.set(spec.manifest, files);
      files.catch(() => this.tables.delete(spec.manifest ?? ''));
      if (this.tables.size > KEEP) this.tables.delete(this.tables.keys().next().value as string);
    }
    return {
      files: await files,
      ...(spec.binding ? { binding: spec.binding } : {}),
      notFoundHandling: spec.notFoundHandling,
      htmlHandling: spec.htmlHandling,
      runWorkerFirst: spec.runWorkerFirst,
    };
  }

  private async read(digest: string): Promise<ReadonlyMap<string, ServedAsset>> {
    const missing = (what: string) =>
      new KylixError(
        'ERR_NOT_READY',
        `The ${what} of spec.assets (${digest.slice(0, 19)}…) is in no bundle store this node can reach. Apply the function again.`,
      );
    if (!(await this.bundles.has(digest))) throw missing('manifest');
    const manifest = parseAssetManifest(await readFile(this.bundles.path(digest)));
    const files = new Map<string, ServedAsset>();
    for (const [path, entry] of Object.entries(manifest.files)) {
      if (!(await this.bundles.has(entry.digest))) throw missing(`file ${path}`);
      files.set(path, {
        file: this.bundles.path(entry.digest),
        etag: `"${entry.digest.slice(7, 39)}"`,
        type: entry.type,
        size: entry.size,
      });
    }
    return files;
  }
}
