/**
 * The Workers `caches` global: `caches.default` and `caches.open(name)`, each a Cache with
 * match/put/delete as the Workers runtime has them. Only GET requests are cached (put refuses
 * others, 206 responses and `Vary: *`; match and delete ignore them unless `ignoreMethod`); what
 * is kept and for how long follows the response's headers (cache-policy.ts); Vary is honoured by
 * comparing the request's values of the named headers; a hit carries `CF-Cache-Status: HIT`, and
 * answers 304 to a matching If-None-Match. Entries live on the supervisor side, in this function's
 * namespace only (src/bindings/cache/).
 */
import type { Rpc } from '../bindings/common.js';
import { cacheTtl } from './cache-policy.js';

/** The binding name the supervisor serves caches under (src/bindings/cache/kind.ts has the same). */
export const CACHE_BINDING = '#caches';

/** A stored entry as the supervisor answers it. */
interface Entry {
  head: {
    status: number;
    statusText: string;
    headers: [string, string][];
    vary: [string, string | null][];
    stored: number;
  };
  body: Uint8Array;
}

type RequestLike = Request | string | URL;

function toRequest(r: RequestLike): Request {
  return r instanceof Request ? r : new Request(String(r));
}

/** The names a response varies on, lowercased; undefined for `Vary: *`. */
function varyNames(response: Response): string[] | undefined {
  const names = (response.headers.get('vary') ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  return names.includes('*') ? undefined : [...new Set(names)];
}

/** One Cache; `name` is '' for caches.default. */
function cache(rpc: Rpc, name: string) {
  const call = (op: 'match' | 'put' | 'delete', args: unknown[]) => rpc(CACHE_BINDING, op, args);
  return Object.freeze({
    async match(
      request: RequestLike,
      options: { ignoreMethod?: boolean } = {},
    ): Promise<Response | undefined> {
      const req = toRequest(request);
      if (req.method !== 'GET' && !options.ignoreMethod) return undefined;
      const entry = (await call('match', [name, req.url])) as Entry | null;
      if (!entry) return undefined;
      for (const [header, value] of entry.head.vary) if (req.headers.get(header) !== value) return undefined;
      const headers = new Headers(entry.head.headers);
      headers.set('cf-cache-status', 'HIT');
      headers.set('age', String(Math.max(0, Math.floor((Date.now() - entry.head.stored) / 1000))));
      const etag = headers.get('etag');
      const ifNoneMatch = req.headers.get('if-none-match');
      if (etag && ifNoneMatch?.split(',').some((t) => t.trim() === etag || t.trim() === '*'))
        return new Response(null, { status: 304, headers });
      const empty = entry.head.status === 204 || entry.head.status === 304;
      return new Response(empty ? null : (entry.body as Uint8Array<ArrayBuffer>), {
        status: entry.head.status,
        statusText: entry.head.statusText,
        headers,
      });
    },
    async put(request: RequestLike, response: Response): Promise<void> {
      const req = toRequest(request);
      if (req.method !== 'GET') throw new TypeError('Cannot cache response to non-GET request.');
      if (!(response instanceof Response)) throw new TypeError('put() takes a Response.');
      if (response.status === 206)
        throw new TypeError('Cannot cache response to a range request (206 Partial Content).');
      const vary = varyNames(response);
      if (!vary) throw new TypeError("Cannot cache response with 'Vary: *' header.");
      if (response.bodyUsed) throw new TypeError('Response body is already used.');
      const body = new Uint8Array(await response.arrayBuffer());
      const ttl = cacheTtl(response.status, response.headers);
      if (ttl === undefined) return;
      const head = {
        status: response.status,
        statusText: response.statusText,
        headers: [...response.headers].filter(([h]) => h !== 'set-cookie'),
        vary: vary.map((h) => [h, req.headers.get(h)]),
      };
      await call('put', [name, req.url, head, body, ttl]);
    },
    async delete(request: RequestLike, options: { ignoreMethod?: boolean } = {}): Promise<boolean> {
      const req = toRequest(request);
      if (req.method !== 'GET' && !options.ignoreMethod) return false;
      return (await call('delete', [name, req.url])) as boolean;
    },
  });
}

/** The `caches` global, calling the supervisor through `rpc`. */
export function guestCaches(rpc: Rpc) {
  const opened = new Map<string, ReturnType<typeof cache>>();
  return Object.freeze({
    default: cache(rpc, ''),
    async open(name: string) {
      if (typeof name !== 'string' || name === '')
        throw new TypeError('caches.open() takes a non-empty name.');
      const known = opened.get(name);
      if (known) return known;
      const made = cache(rpc, name);
      opened.set(name, made);
      return made;
    },
  });
}

/** Puts `caches` on the global object (after the realm is hardened, before the bundle loads). */
export function installCaches(rpc: Rpc): void {
  Object.defineProperty(globalThis, 'caches', {
    value: guestCaches(rpc),
    writable: false,
    configurable: false,
    enumerable: false,
  });
}
