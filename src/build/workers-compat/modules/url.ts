/** `node:url`: the legacy parse/format/resolve (the `url` package) with the WHATWG URL and file URLs. */
// 'url/' is the npm package: a bare 'url' would resolve to this module (see ../plugin.ts).
// @ts-expect-error: the npm package has no types; only its parse/format/resolve are used.
import * as legacy from 'url/';

export const { parse, format, resolve, resolveObject, Url } = legacy as unknown as Record<string, never>;
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;

/** The path of a file: URL. */
export function fileURLToPath(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  if (u.protocol !== 'file:') throw new TypeError('The URL must be of scheme file');
  return decodeURIComponent(u.pathname);
}

/** A file: URL for an absolute path. */
export function pathToFileURL(path: string): URL {
  const u = new URL('file://');
  u.pathname = path.startsWith('/') ? path : `/${path}`;
  return u;
}

/** The ASCII (punycode) form of a domain name. */
export function domainToASCII(domain: string): string {
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return '';
  }
}

/** The Unicode form of a domain name. */
export function domainToUnicode(domain: string): string {
  return domain;
}

export default {
  parse,
  format,
  resolve,
  resolveObject,
  Url,
  URL,
  URLSearchParams,
  fileURLToPath,
  pathToFileURL,
  domainToASCII,
  domainToUnicode,
};
