/**
 * Reading manifests: YAML (many documents per file) or JSON, from a file or a folder tree.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KylixError } from '../errors.js';
import { parseYamlDocuments, YamlProblem } from './yaml.js';

/** One document read from a manifest file, with where it came from. */
export interface ManifestDocument {
  object: Record<string, unknown>;
  file: string;
  /** 1-based document number within the file. */
  index: number;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

/** Every manifest file under a path: the file itself, or a folder's files recursively, sorted. */
export function manifestFiles(path: string): string[] {
  const full = resolve(path);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(full);
  } catch {
    throw new KylixError(
      'ERR_MANIFEST_UNREADABLE',
      `${path} does not exist. Give a manifest file or a folder of them.`,
    );
  }
  if (!stat.isDirectory()) return [full];
  return readdirSync(full, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && e.name !== 'node_modules')
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => {
      const p = join(full, e.name);
      if (e.isDirectory()) return manifestFiles(p);
      return MANIFEST_EXT.test(e.name) ? [p] : [];
    });
}

/**
 * Parses one file's text into documents. YAML syntax errors name the file and line; an alias bomb
 * or other abuse of YAML names the file and the limit.
 */
export function parseManifest(text: string, file: string): ManifestDocument[] {
  let values: unknown[];
  try {
    values = parseYamlDocuments(text);
  } catch (err) {
    if (!(err instanceof YamlProblem)) throw err;
    const line = err.line ? `${file}:${err.line}` : file;
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      err.code === 'TOO_MANY_ALIASES'
        ? `${file}: ${err.where}. Write the repeated parts out, or use fewer aliases.`
        : `${file} is not valid YAML: ${err.detail}`,
      [{ field: line, message: err.code === 'TOO_MANY_ALIASES' ? err.where : err.detail }],
    );
  }
  const out: ManifestDocument[] = [];
  values.forEach((value, i) => {
    if (value === null || value === undefined) return; // an empty document between "---" lines
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new KylixError(
        'ERR_MANIFEST_INVALID',
        `${file} document ${i + 1} is not a mapping (apiVersion, kind, metadata, spec).`,
      );
    }
    // A List (as kubectl writes with -o yaml) holds its objects in items.
    const obj = value as Record<string, unknown>;
    if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
      for (const item of obj.items) out.push({ object: item as Record<string, unknown>, file, index: i + 1 });
    } else {
      out.push({ object: obj, file, index: i + 1 });
    }
  });
  return out;
}

/**
 * Reads every document under the given paths. In folders, JSON files without an apiVersion
 * (package.json, tsconfig.json) are not manifests and are passed over.
 */
export function readManifests(paths: string[]): ManifestDocument[] {
  const out: ManifestDocument[] = [];
  for (const path of paths) {
    const isDir = statSafe(path)?.isDirectory() ?? false;
    for (const file of manifestFiles(path)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new KylixError('ERR_MANIFEST_UNREADABLE', `Cannot read ${file}: ${(err as Error).message}`);
      }
      const docs = parseManifest(text, file);
      for (const d of docs) {
        if (isDir && file.endsWith('.json') && d.object.apiVersion === undefined) continue;
        out.push(d);
      }
    }
  }
  return out;
}

function statSafe(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
