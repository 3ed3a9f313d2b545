/**
 * Bundles a function's source (a file, or a folder with an entry point) and its npm dependencies
 * into one ES module with esbuild, for Web-standard runtimes. The Node built-ins Workers offers
 * under nodejs_compat, and `cloudflare:workers`, are bundled in as pure-JS modules
 * (workers-compat/plugin.ts); importing any other is a build error, not a surprise at run time.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build, type Message } from 'esbuild';
import { KylixError } from '../errors.js';
import { digestOf } from './digest.js';
import { PRELUDE, workersCompat } from './workers-compat/plugin.js';

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

function formatMessage(m: Message, cwd: string): { field: string; message: string } {
  const loc = m.location;
  return {
    field: loc ? `${relative(cwd, loc.file) || loc.file}:${loc.line}:${loc.column + 1}` : '(bundle)',
    message: loc?.lineText ? `${m.text}\n      ${loc.lineText.trim()}` : m.text,
  };
}

/** Bundles `source`; throws ERR_BUILD_FAILED with file:line:column for every error. */
export async function bundleFunction(source: string, cwd = process.cwd()): Promise<Bundle> {
  const entry = resolveEntry(source);
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['workerd', 'worker', 'browser'],
      mainFields: ['browser', 'module', 'main'],
      target: 'es2022',
      sourcemap: 'inline',
      logLevel: 'silent',
      legalComments: 'none',
      plugins: [workersCompat()],
      banner: { js: PRELUDE },
    });
    const file = result.outputFiles[0];
    if (!file) throw new KylixError('ERR_BUILD_FAILED', `esbuild produced no output for ${entry}.`);
    const code = Buffer.from(file.contents);
    return {
      code,
      digest: digestOf(code),
      entry,
      warnings: result.warnings.map((w) => {
        const f = formatMessage(w, cwd);
        return `${f.field}: ${f.message}`;
      }),
    };
  } catch (err) {
    if (err instanceof KylixError) throw err;
    const errors = (err as { errors?: Message[] }).errors;
    if (!errors) throw err;
    const causes = errors.map((m) => formatMessage(m, cwd));
    throw new KylixError(
      'ERR_BUILD_FAILED',
      `Could not bundle ${relative(cwd, entry) || entry}: ${errors.length} error${errors.length === 1 ? '' : 's'}.`,
      causes,
    );
  }
}
