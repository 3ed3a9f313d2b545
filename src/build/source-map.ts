/**
 * Source maps of function bundles, on both sides of a build:
 *
 * - at build time, `portableSourceMap` makes the map name files the same wherever the project and
 *   Kylix are installed (dependencies as `node_modules/…`, Kylix's compat modules as `kylix/…`),
 *   and inlines it, so identical code from another folder is an identical bundle;
 * - in the supervisor (never inside the sandbox), `StackMapper` rewrites the stack traces a
 *   function's log lines and start-up failures carry: each frame in the bundle becomes the user's
 *   `src/file.ts:line:column`, and frames of Kylix's own code (the sandbox, the compat modules,
 *   Node's internals) are left out.
 */
import { readFileSync, statSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Kylix's own folder (src/build/.. /.. or dist/build/../..). */
const KYLIX_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const INLINE_PREFIX = '//# sourceMappingURL=data:application/json;base64,';

/** A file name of the map, relative to `root`, as it reads the same from any folder. */
function portableName(source: string, root: string): string {
  const posix = source.split(sep).join('/');
  const modules = posix.lastIndexOf('node_modules/');
  if (modules !== -1) return posix.slice(modules);
  if (!posix.startsWith('../') && !isAbsolute(source)) return posix;
  const abs = resolve(root, source);
  if (abs.startsWith(KYLIX_ROOT + sep)) return `kylix/${relative(KYLIX_ROOT, abs).split(sep).join('/')}`;
  return posix;
}

/**
 * Rewrites the file names of esbuild's output (its `// file` comments and the map's sources) to
 * portable ones and returns the code with the map inlined.
 */
export function portableSourceMap(code: string, mapText: string, root: string): string {
  const map = JSON.parse(mapText) as SourceMapPayload & { sourcesContent?: string[] };
  const renamed = new Map<string, string>();
  map.sources = map.sources.map((s) => {
    const name = portableName(s, root);
    if (name !== s) renamed.set(s, name);
    return name;
  });
  // esbuild starts each module's code with a "// path" line: no mapping points into those lines.
  const body = code
    .replace(/^\/\/# sourceMappingURL=.*$/m, '')
    .replace(/^\/\/ (\S+)$/gm, (line, name: string) => {
      const to = renamed.get(name);
      return to ? `// ${to}` : line;
    })
    .trimEnd();
  map.sourceRoot = '';
  const inline = Buffer.from(JSON.stringify(map)).toString('base64');
  return `${body}\n${INLINE_PREFIX}${inline}\n`;
}

/** The source map inlined in a bundle, if any. */
export function inlineSourceMap(code: string): SourceMap | undefined {
  const at = code.lastIndexOf(INLINE_PREFIX);
  if (at === -1) return undefined;
  const end = code.indexOf('\n', at);
  const b64 = code.slice(at + INLINE_PREFIX.length, end === -1 ? undefined : end).trim();
  try {
    return new SourceMap(JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as SourceMapPayload);
  } catch {
    return undefined;
  }
}

/** Whether a mapped file is Kylix's own (a compat module), whose frames users need not see. */
const isKylixSource = (source: string) => source.startsWith('kylix/');

/** A stack frame line: "    at name (location)" or "    at location". */
const FRAME = /^\s+at\s/;

/** See the file comment. Maps are read once per bundle and kept (a few, most recently used). */
export class StackMapper {
  private readonly maps = new Map<string, SourceMap | null>();

  constructor(private readonly keep = 32) {}

  private mapOf(bundlePath: string): SourceMap | undefined {
    const cached = this.maps.get(bundlePath);
    if (cached !== undefined) {
      this.maps.delete(bundlePath);
      this.maps.set(bundlePath, cached);
      return cached ?? undefined;
    }
    let map: SourceMap | undefined;
    try {
      // A bundle is content-addressed: the file at this path never changes.
      if (statSync(bundlePath).size <= 64 * 2 ** 20) map = inlineSourceMap(readFileSync(bundlePath, 'utf8'));
    } catch {
      map = undefined;
    }
    this.maps.set(bundlePath, map ?? null);
    if (this.maps.size > this.keep) this.maps.delete(this.maps.keys().next().value as string);
    return map;
  }

  /**
   * Rewrites every location in `text` that points into the bundle at `bundlePath` (by any path or
   * URL ending in its file name) to the original file, line and column; drops stack frames that
   * are not the function's own code. Text without such locations comes back as it was.
   */
  rewrite(bundlePath: string, text: string): string {
    const file = basename(bundlePath);
    if (!text.includes(file) && !/\n\s+at\s/.test(text)) return text;
    const map = this.mapOf(bundlePath);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const location = new RegExp(`(?:file://)?[^\\s()]*${escaped}:(\\d+):(\\d+)`, 'g');
    const lines = text.split('\n');
    const out: string[] = [];
    for (const line of lines) {
      let ours = false;
      let theirs = false;
      const mapped = line.replace(location, (whole, l: string, c: string) => {
        const entry = map?.findEntry(Number(l) - 1, Number(c) - 1) as
          | { originalSource?: string; originalLine?: number; originalColumn?: number }
          | undefined;
        if (!entry?.originalSource) {
          theirs = true;
          return whole;
        }
        if (isKylixSource(entry.originalSource)) theirs = true;
        else ours = true;
        return `${entry.originalSource}:${(entry.originalLine ?? 0) + 1}:${(entry.originalColumn ?? 0) + 1}`;
      });
      // A frame of the function's own code (or its dependencies) stays; the rest is Kylix's or Node's.
      if (FRAME.test(line) && (!ours || theirs)) continue;
      out.push(mapped);
    }
    return out.join('\n');
  }
}
