/**
 * Static assets (spec.assets), served by the gateway from the bundle store, never by the sandbox:
 * for GET and HEAD on a function's routes, before the function runs (unless runWorkerFirst), with
 * a strong ETag (If-None-Match answers 304), the Content-Type recorded at apply, and Workers'
 * html_handling and not_found_handling rules. The same lookup answers `env.ASSETS.fetch(request)`
 * and Workers Sites' `env.__STATIC_CONTENT.get(key)` (binding calls the runtime hands to
 * `assetCall`), so a function reads the files it was deployed with.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KylixError } from '../errors.js';
import type { ServedAsset, ServedAssets } from '../resources/serving.js';

/** Cache-Control of an asset, as Workers sends it: always revalidate, cheaply, by ETag. */
const CACHE_CONTROL = 'public, max-age=0, must-revalidate';
/** The env name Workers Sites code reads its files through (Hono's serveStatic). */
export const STATIC_CONTENT_BINDING = '__STATIC_CONTENT';

/** Where a request path leads: a file, a redirect to the canonical path, or nothing. */
export type AssetLookup = { asset: ServedAsset } | { redirect: string } | undefined;

/** A request path, decoded; undefined when it cannot name a file (bad escapes, NUL). */
function decodePath(path: string): string | undefined {
  try {
    const decoded = decodeURIComponent(path);
    return decoded.includes('\0') ? undefined : decoded;
  } catch {
    return undefined;
  }
}

/** Finds the asset for `path` under the function's html_handling (see Workers' docs). */
export function lookupAsset(assets: ServedAssets, rawPath: string): AssetLookup {
  const path = decodePath(rawPath);
  if (path === undefined) return undefined;
  const { files, htmlHandling: mode } = assets;
  const found = (p: string) => {
    const asset = files.get(p);
    return asset ? { asset } : undefined;
  };
  if (mode === 'none') return found(path);
  // Non-HTML files are served at their exact path whatever the mode.
  if (!path.endsWith('.html') && !path.endsWith('/') && files.has(path)) return found(path);
  const slash = mode !== 'drop-trailing-slash';
  if (path.endsWith('/index.html') && files.has(path)) {
    const dir = path.slice(0, -'index.html'.length);
    return slash || dir === '/' ? { redirect: dir } : { redirect: dir.slice(0, -1) };
  }
  if (path.endsWith('.html') && files.has(path)) {
    const bare = path.slice(0, -'.html'.length);
    return { redirect: mode === 'force-trailing-slash' ? `${bare}/` : bare };
  }
  if (path.endsWith('/')) {
    const bare = path.slice(0, -1);
    if (files.has(`${path}index.html`))
      return slash || path === '/' ? found(`${path}index.html`) : { redirect: bare };
    if (bare && files.has(`${bare}.html`))
      return mode === 'force-trailing-slash' ? found(`${bare}.html`) : { redirect: bare };
    return undefined;
  }
  if (files.has(`${path}.html`))
    return mode === 'force-trailing-slash' ? { redirect: `${path}/` } : found(`${path}.html`);
  if (files.has(`${path}/index.html`)) return slash ? { redirect: `${path}/` } : found(`${path}/index.html`);
  return undefined;
}

/** The nearest 404.html above `path` ("/a/b/c" tries /a/b/404.html, /a/404.html, /404.html). */
function notFoundPage(assets: ServedAssets, path: string): ServedAsset | undefined {
  const parts = path.split('/').slice(1, -1);
  for (let i = parts.length; i >= 0; i--) {
    const page = assets.files.get(`/${[...parts.slice(0, i), '404.html'].join('/')}`);
    if (page) return page;
  }
  return undefined;
}

/** Whether If-None-Match names this ETag (or "*"), weak or strong. */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag || t === '*');
}

function headersOf(asset: ServedAsset): Record<string, string> {
  return { 'content-type': asset.type, etag: asset.etag, 'cache-control': CACHE_CONTROL };
}

/** Writes one asset (or its 304) to a client response. */
function send(
  req: IncomingMessage,
  res: ServerResponse,
  asset: ServedAsset,
  status: number,
  requestId: string,
): void {
  req.resume();
  res.setHeader('kylix-request-id', requestId);
  if (status === 200 && notModified(req.headers['if-none-match'], asset.etag)) {
    res.writeHead(304, { etag: asset.etag, 'cache-control': CACHE_CONTROL });
    res.end();
    return;
  }
  res.writeHead(status, { ...headersOf(asset), 'content-length': String(asset.size) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(asset.file);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

/** Whether a browser is navigating to a page (for single-page applications). */
function isNavigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  if (mode) return mode === 'navigate';
  return (req.headers.accept ?? '').includes('text/html');
}

/**
 * Serves `path` from the function's assets when one answers it; returns false when the request is
 * the function's to serve (another method, no such asset, runWorkerFirst).
 */
export function serveAsset(
  req: IncomingMessage,
  res: ServerResponse,
  assets: ServedAssets,
  path: string,
  query: string,
  requestId: string,
): boolean {
  if (assets.runWorkerFirst || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  const hit = lookupAsset(assets, path);
  if (hit && 'redirect' in hit) {
    req.resume();
    res.writeHead(307, { location: `${hit.redirect}${query}`, 'kylix-request-id': requestId });
    res.end();
    return true;
  }
  if (hit) {
    send(req, res, hit.asset, 200, requestId);
    return true;
  }
  // A single-page application's routes are its index page; other misses go to the function.
  const index = assets.files.get('/index.html');
  if (assets.notFoundHandling === 'single-page-application' && index && isNavigation(req)) {
    send(req, res, index, 200, requestId);
    return true;
  }
  return false;
}

/** The answer to env.ASSETS.fetch(), as it crosses back into the sandbox. */
export interface AssetResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array | null;
}

/** env.ASSETS.fetch(method, url, headers): the asset, a redirect, or the not-found handling's answer. */
async function fetchAsset(
  assets: ServedAssets,
  method: string,
  url: string,
  headers: Record<string, string>,
): Promise<AssetResponse> {
  const { pathname, search } = new URL(url, 'http://assets.invalid');
  if (method !== 'GET' && method !== 'HEAD')
    return { status: 405, headers: [['allow', 'GET, HEAD']], body: null };
  const answer = async (asset: ServedAsset, status: number): Promise<AssetResponse> => {
    if (status === 200 && notModified(headers['if-none-match'], asset.etag))
      return { status: 304, headers: [['etag', asset.etag]], body: null };
    const body = method === 'HEAD' ? null : new Uint8Array(await readFile(asset.file));
    return { status, headers: Object.entries(headersOf(asset)), body };
  };
  const hit = lookupAsset(assets, pathname);
  if (hit && 'redirect' in hit)
    return { status: 307, headers: [['location', `${hit.redirect}${search}`]], body: null };
  if (hit) return answer(hit.asset, 200);
  const index = assets.files.get('/index.html');
  if (assets.notFoundHandling === 'single-page-application' && index) return answer(index, 200);
  const page = assets.notFoundHandling === '404-page' ? notFoundPage(assets, pathname) : undefined;
  if (page) return answer(page, 404);
  return { status: 404, headers: [], body: null };
}

/** A binding call on the assets binding or __STATIC_CONTENT, from a revision that has assets. */
export async function assetCall(
  assets: ServedAssets,
  call: { binding: string; op: string; args: unknown[] },
): Promise<unknown> {
  const bad = (usage: string) =>
    new KylixError('ERR_BINDING_BAD_ARGUMENTS', `${call.binding}.${call.op} takes ${usage}.`);
  if (call.binding === STATIC_CONTENT_BINDING && call.op === 'get') {
    const [key] = call.args;
    if (typeof key !== 'string') throw bad('a key (a string)');
    const asset = assets.files.get(`/${key.replace(/^\//, '')}`);
    return asset ? new Uint8Array(await readFile(asset.file)) : null;
  }
  if (call.binding === assets.binding && call.op === 'fetch') {
    const [method, url, headers] = call.args;
    if (typeof method !== 'string' || typeof url !== 'string' || typeof headers !== 'object' || !headers)
      throw bad('a request');
    return fetchAsset(assets, method, url, headers as Record<string, string>);
  }
  throw new KylixError('ERR_BINDING_BAD_ARGUMENTS', `${call.binding} has no operation "${call.op}".`);
}

/** Whether a binding call is for the revision's assets (and not for a resource binding). */
export function isAssetCall(assets: ServedAssets | undefined, binding: string): assets is ServedAssets {
  return !!assets && (binding === STATIC_CONTENT_BINDING || binding === assets.binding);
}
