/**
 * Bundles a function's source (a file, or a folder with an entry point) and its npm dependencies
 * into one ES module with esbuild, for Web-standard runtimes. The Node built-ins Workers offers
 * under nodejs_compat, and `cloudflare:workers`, are bundled in as pure-JS modules
 * (workers-compat/plugin.ts); importing any other is a build error, not a surprise at run time.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build, type Message, type Plugin } from 'esbuild';
import { KylixError } from '../errors.js';
import { digestOf } from './digest.js';
import { portableSourceMap } from './source-map.js';
import { PRELUDE, PROCESS_GLOBAL, workersCompat } from './workers-compat/plugin.js';

/** A built bundle. */
export interface Bundle {
  code: Buffer;
  digest: string;
  /** The entry file that was bundled. */
  entry: string;
  warnings: string[];
}

const ENTRY_CANDIDATES = [
  'index.ts',
  'index.js',
  'index.mjs',
  'src/index.ts',
  'src/index.js',
  'worker.ts',
  'worker.js',
];

/** The entry file of a source path: the file itself, package.json's module/main, or index.*. */
export function resolveEntry(source: string): string {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(source);
  } catch {
    throw new KylixError(
      'ERR_BUILD_FAILED',
      `spec.source ${source} does not exist. It must name a file or folder relative to the manifest.`,
    );
  }
  if (!stat.isDirectory()) return source;
  const pkgPath = join(source, 'package.json');
  if (existsSync(pkgPath)) {
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { module?: string; main?: string };
    const main = pkg.module ?? pkg.main;
    if (main && existsSync(join(source, main))) return join(source, main);
  }
  for (const c of ENTRY_CANDIDATES) if (existsSync(join(source, c))) return join(source, c);
  throw new KylixError(
    'ERR_BUILD_FAILED',
    `spec.source ${source} is a folder without an entry point. Add index.ts (or set "main" in its package.json).`,
  );
}

function formatMessage(m: Message, cwd: string, root: string): { field: string; message: string } {
  const loc = m.location;
  // esbuild names files relative to the working folder it was given (root).
  const file = loc ? relative(cwd, join(root, loc.file)) || loc.file : '';
  return {
    field: loc ? `${file}:${loc.line}:${loc.column + 1}` : '(bundle)',
    message: loc?.lineText ? `${m.text}\n      ${loc.lineText.trim()}` : m.text,
  };
}

/** What else a bundle may be built with. */
export interface BundleOptions {
  /** Paths in messages are relative to this (default: the current folder). */
  cwd?: string;
  /**
   * The folder the bundle's file names (comments, source map) are relative to: the manifest's, so
   * the same project anywhere gives the same bytes. Default: the entry's folder.
   */
  root?: string;
  /** The asset paths, for `import manifest from '__STATIC_CONTENT_MANIFEST'` (Workers Sites, Hono's serveStatic). */
  staticContent?: string[];
  /** Workers' nodejs_compat: the code gets a global `process` (spec.compatibilityFlags). */
  nodeCompat?: boolean;
}

/**
 * `__STATIC_CONTENT_MANIFEST`, the module Workers Sites gives a function: a JSON string mapping
 * each asset path ("css/site.css") to the key env.__STATIC_CONTENT.get() takes (here the same path).
 */
function staticContentManifest(paths: string[] | undefined): Plugin {
  return {
    name: 'kylix-static-content',
    setup(b) {
      b.onResolve({ filter: /^__STATIC_CONTENT_MANIFEST$/ }, () => ({
        path: 'manifest',
        namespace: 'kylix-static',
      }));
      b.onLoad({ filter: /.*/, namespace: 'kylix-static' }, () => {
        const map = Object.fromEntries((paths ?? []).map((p) => [p.slice(1), p.slice(1)]));
        return { contents: `export default ${JSON.stringify(JSON.stringify(map))};`, loader: 'js' };
      });
    },
  };
}

/** Bundles `source`; throws ERR_BUILD_FAILED with file:line:column for every error. */
export async function bundleFunction(source: string, options: BundleOptions | string = {}): Promise<Bundle> {
  const opts = typeof options === 'string' ? { cwd: options } : options;
  const cwd = opts.cwd ?? process.cwd();
  const entry = resolveEntry(source);
  const root = opts.root ?? dirname(entry);
  try {
    const result = await build({
      entryPoints: [entry],
      absWorkingDir: root,
      outfile: 'bundle.mjs',
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['workerd', 'worker', 'browser'],
      mainFields: ['browser', 'module', 'main'],
      target: 'es2022',
      sourcemap: 'external',
      sourcesContent: true,
      logLevel: 'silent',
      legalComments: 'none',
      plugins: [workersCompat(), staticContentManifest(opts.staticContent)],
      ...(opts.nodeCompat ? { inject: [PROCESS_GLOBAL] } : {}),
      banner: { js: PRELUDE },
    });
    const js = result.outputFiles.find((f) => f.path.endsWith('.mjs'));
    const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
    if (!js || !map) throw new KylixError('ERR_BUILD_FAILED', `esbuild produced no output for ${entry}.`);
    const code = Buffer.from(portableSourceMap(js.text, map.text, root));
    return {
      code,
      digest: digestOf(code),
      entry,
      warnings: result.warnings.map((w) => {
        const f = formatMessage(w, cwd, root);
        return `${f.field}: ${f.message}`;
      }),
    };
  } catch (err) {
    if (err instanceof KylixError) throw err;
    const errors = (err as { errors?: Message[] }).errors;
    if (!errors) throw err;
    const causes = errors.map((m) => formatMessage(m, cwd, root));
    throw new KylixError(
      'ERR_BUILD_FAILED',
      `Could not bundle ${relative(cwd, entry) || entry}: ${errors.length} error${errors.length === 1 ? '' : 's'}.`,
      causes,
    );
  }
}
