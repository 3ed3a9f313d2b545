/**
 * A Function's static assets (spec.assets), modelled on the `assets` setting of Workers: a folder
 * of files uploaded with the code, content-addressed, and served by the gateway for GET and HEAD
 * before the function runs. The schema, the limits and the asset manifest's shape live here, so
 * the CLI (which builds the manifest), the control plane (which loads it) and the gateway agree.
 */
import { z } from 'zod';

/** The most files one Function's assets may hold (as Workers' paid plan). */
export const MAX_ASSET_FILES = 20_000;
/** The largest asset file; the bundle store's upload limit (KYLIX_MAX_BUNDLE_BYTES) applies as well. */
export const MAX_ASSET_FILE_BYTES = 25 * 2 ** 20;
/** All asset files of one Function together. */
export const MAX_ASSETS_TOTAL_BYTES = 512 * 2 ** 20;

const digest = z
  .string()
  .regex(/^sha256:[a-f0-9]{64}$/, 'must be "sha256:" and 64 hex digits (kylix apply writes it)');

/** What happens to a request for a path no asset has (Workers' `not_found_handling`). */
export const NOT_FOUND_HANDLING = ['single-page-application', '404-page', 'none'] as const;
/** How `.html` files and trailing slashes are matched (Workers' `html_handling`). */
export const HTML_HANDLING = [
  'auto-trailing-slash',
  'force-trailing-slash',
  'drop-trailing-slash',
  'none',
] as const;

/** spec.assets of a Function. */
export const assetsSpec = z.strictObject({
  /** A folder relative to the manifest; its files are uploaded by `kylix apply`. */
  directory: z.string().min(1, 'must name a folder'),
  /** The env name of an object whose fetch(request) answers from the assets (env.ASSETS). */
  binding: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name (letters, digits, "_")')
    .optional(),
  notFoundHandling: z.enum(NOT_FOUND_HANDLING).default('none'),
  htmlHandling: z.enum(HTML_HANDLING).default('auto-trailing-slash'),
  /** Send every request to the function first; it reaches the files through the binding. */
  runWorkerFirst: z.boolean().default(false),
  /** The content address of the asset manifest, written by `kylix apply`. */
  manifest: digest.optional(),
});

/** spec.assets after defaults. */
export type AssetsSpec = z.output<typeof assetsSpec>;

/** One file in an asset manifest: its content address, size and Content-Type. */
export interface AssetEntry {
  digest: string;
  size: number;
  type: string;
}

/** The asset manifest: URL path ("/css/site.css") → file. Stored as a content-addressed blob. */
export interface AssetManifest {
  version: 1;
  files: Record<string, AssetEntry>;
}

/** Parses a stored asset manifest, refusing anything that is not one. */
export function parseAssetManifest(bytes: Uint8Array | string): AssetManifest {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  const value = JSON.parse(text) as AssetManifest;
  if (value?.version !== 1 || typeof value.files !== 'object' || value.files === null)
    throw new Error('not an asset manifest');
  return value;
}
