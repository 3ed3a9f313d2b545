/**
 * The dashboard's static files: the page at `/` and its hashed assets under /dashboard/assets/,
 * built by scripts/build.mjs into dist/dashboard/web (Preact and uPlot bundled in, so nothing is
 * fetched from elsewhere and it works offline). They are public — they hold no data; every figure
 * comes from the API, which checks the token — and are served with a strict Content-Security-Policy
 * (scripts and styles from this origin only, nothing inline, no framing), nosniff, no referrer.
 * Files are read once and kept in memory with their gzip form: the whole page is ~100 KB.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context, Hono } from 'hono';

/** Where the build puts the page: two levels up from this file is the package, from src/ or dist/. */
export const WEB_DIR = fileURLToPath(new URL('../../dist/dashboard/web/', import.meta.url));

/** The URL prefix of the hashed assets. */
export const ASSETS_PATH = '/dashboard/assets/';

/** Every answer of the dashboard's files carries these. */
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};

interface StaticFile {
  body: Buffer;
  gzip: Buffer;
  type: string;
}

/** The built files, read on first use. */
function load(dir: string): Map<string, StaticFile> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, gzip: gzipSync(body), type });
  }
  return files;
}

function send(c: Context, file: StaticFile, cache: string): Response {
  const gzip = /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
  return c.body(new Uint8Array(gzip ? file.gzip : file.body), 200, {
    ...SECURITY_HEADERS,
    'content-type': file.type,
    'cache-control': cache,
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
}

/**
 * Adds GET / and GET /dashboard/assets/* to the app. Mounted before the token check: the page must
 * load so that it can ask for the token.
 */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its bindings.
export function addDashboardStatic(app: Hono<any>, dir: string = WEB_DIR): void {
  let files: Map<string, StaticFile> | undefined;
  const get = () => {
    files ??= load(dir);
    return files;
  };
  app.get('/', (c) => {
    const index = get()?.get('index.html');
    if (!index)
      return c.text(
        'The dashboard is not built in this copy of Kylix: run `npm run build` (it writes dist/dashboard/web), then reload.\n',
        503,
        { ...SECURITY_HEADERS, 'cache-control': 'no-store' },
      );
    // The page names its assets by content hash, so only the page itself is revalidated.
    return send(c, index, 'no-cache');
  });
  app.get(`${ASSETS_PATH}:file`, (c) => {
    const name = c.req.param('file');
    const file = name === 'index.html' ? undefined : get()?.get(name);
    if (!file) return c.text('Not found.\n', 404, SECURITY_HEADERS);
    return send(c, file, 'public, max-age=31536000, immutable');
  });
}
