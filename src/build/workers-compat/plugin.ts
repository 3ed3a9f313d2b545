/**
 * Workers' module surface, resolved at bundle time so that nothing of the host's Node is importable
 * at run time (the sandbox refuses every import but the bundle's):
 *
 * - the `node:*` modules Workers offers under nodejs_compat (and their bare names) become pure-JS
 *   implementations bundled into the function: npm polyfills (events, util, path-browserify,
 *   assert, string_decoder, readable-stream, url, querystring-es3, browserify-zlib over pako) and
 *   Kylix's own (crypto over @noble/hashes, async_hooks over the instance's AsyncLocalStorage,
 *   process, buffer as the realm's frozen Buffer, timers, diagnostics_channel);
 * - `cloudflare:workers` is a module of its own (env, waitUntil, WorkerEntrypoint);
 * - any other `node:*` import is a build error that names what is offered;
 * - the polyfills that name a free `process` (POLYFILLS_USING_PROCESS) get modules/process.ts. The
 *   function's own code does not: `process` stays undefined there, as on Workers without
 *   nodejs_compat, unless it imports node:process or the Function names nodejs_compat in
 *   spec.compatibilityFlags (bundle.ts then injects PROCESS_GLOBAL).
 *
 * Run-time state (the env) reaches the bundle through PRELUDE: the instance offers it under
 * WORKERS_GLOBAL while the bundle loads (src/sandbox/workers-compat/workers-module.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

/** The global the instance offers its state under. Same name in src/sandbox/workers-compat/workers-module.ts. */
const WORKERS_GLOBAL = '__kylix_workers__';

/** The bundle's first statement: takes the instance's state before any module of the bundle runs. */
export const PRELUDE = `const __kylix_workers_state = globalThis.${WORKERS_GLOBAL};`;

const HERE = dirname(fileURLToPath(import.meta.url));

/** A module of ./modules, as .ts (run from source) or .js (run from dist). */
function ownModule(name: string): string {
  const ts = join(HERE, 'modules', `${name}.ts`);
  return existsSync(ts) ? ts : join(HERE, 'modules', `${name}.js`);
}

/** The module injected for nodejs_compat: the bundle's global `process` (bundle.ts). */
export const PROCESS_GLOBAL = ownModule('process-global');

/** How each offered module is provided: an npm package, one of ./modules, or a line of CommonJS. */
type Source = { pkg: string } | { own: string } | { cjs: string };

/** The node:* modules offered (bare names too), as Workers lists them for nodejs_compat. */
const NODE_MODULES: Record<string, Source> = {
  assert: { pkg: 'assert/' },
  'assert/strict': { cjs: "module.exports = require('assert').strict;" },
  async_hooks: { own: 'async-hooks' },
  buffer: { own: 'buffer' },
  crypto: { own: 'crypto' },
  diagnostics_channel: { own: 'diagnostics-channel' },
  events: { pkg: 'events/' },
  path: { pkg: 'path-browserify' },
  'path/posix': { pkg: 'path-browserify' },
  process: { own: 'process' },
  querystring: { pkg: 'querystring-es3' },
  stream: { pkg: 'readable-stream' },
  'stream/promises': { cjs: "module.exports = require('stream').promises;" },
  'stream/web': {
    cjs: 'module.exports = { ReadableStream, WritableStream, TransformStream, TextEncoderStream, TextDecoderStream, CompressionStream, DecompressionStream, ByteLengthQueuingStrategy, CountQueuingStrategy };',
  },
  string_decoder: { pkg: 'string_decoder/' },
  timers: { own: 'timers' },
  'timers/promises': { own: 'timers-promises' },
  url: { own: 'url' },
  util: { pkg: 'util/' },
  'util/types': { cjs: "module.exports = require('util').types;" },
  zlib: { pkg: 'browserify-zlib' },
};

/** Polyfill files that use `process` without importing it: they are given modules/process.ts. */
const POLYFILLS_USING_PROCESS =
  /[\\/]node_modules[\\/](util|assert|path-browserify|browserify-zlib)[\\/].*\.js$/;

const OFFERED = Object.keys(NODE_MODULES)
  .filter((n) => !n.includes('/'))
  .map((n) => `node:${n}`)
  .join(', ');

/** The esbuild plugin (see the file comment). */
export function workersCompat(): Plugin {
  const names = Object.keys(NODE_MODULES)
    .map((n) => n.replace('/', '\\/'))
    .join('|');
  return {
    name: 'kylix-workers-compat',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(node:)?(${names})$`) }, async (args) => {
        const name = args.path.replace(/^node:/, '');
        const source = NODE_MODULES[name] as Source;
        if ('own' in source) return { path: ownModule(source.own) };
        if ('cjs' in source) return { path: name, namespace: 'kylix-compat', pluginData: source.cjs };
        const resolved = await build.resolve(source.pkg, { resolveDir: HERE, kind: args.kind });
        return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path };
      });
      build.onResolve({ filter: /^cloudflare:workers$/ }, () => ({ path: ownModule('cloudflare-workers') }));
      build.onLoad({ filter: POLYFILLS_USING_PROCESS }, async (args) => {
        const text = await readFile(args.path, 'utf8');
        if (!/\bprocess\b/.test(text)) return undefined;
        const prelude = `var process = require(${JSON.stringify(ownModule('process'))}).process;`;
        return { contents: `${prelude}${text}`, loader: 'js' };
      });
      build.onResolve({ filter: /^(node|cloudflare):/ }, (args) => ({
        errors: [
          {
            text: `"${args.path}" is not available to functions. Kylix offers ${OFFERED} and cloudflare:workers.`,
          },
        ],
      }));
      build.onLoad({ filter: /.*/, namespace: 'kylix-compat' }, (args) => ({
        contents: args.pluginData as string,
        loader: 'js',
        resolveDir: HERE,
      }));
    },
  };
}
