/**
 * Whether, and for how long, the Workers Cache API keeps a response put into it: Cache-Control
 * (s-maxage over max-age; no-store, no-cache, private and a max-age of 0 keep nothing), then
 * Expires, then Cloudflare's default edge TTLs by status. A response that sets a cookie is not
 * kept, as on Cloudflare's cache, unless Cache-Control says `private=set-cookie`.
 */

/** Cloudflare's edge TTLs, in seconds, for a response without Cache-Control or Expires. */
const DEFAULT_TTL: Record<number, number> = {
  200: 7200,
  203: 7200,
  300: 7200,
  301: 7200,
  302: 1200,
  303: 1200,
  404: 180,
  410: 180,
};

/** Longest time an entry is kept (the supervisor refuses more). */
export const MAX_TTL_SECONDS = 365 * 24 * 3600;

/** The directives of a Cache-Control header, lowercased: name → value ('' when it has none). */
export function cacheControl(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(',')) {
    const m = /^\s*([A-Za-z-]+)\s*(?:=\s*"?([^"]*)"?)?\s*$/.exec(part);
    if (m) out.set(m[1]!.toLowerCase(), (m[2] ?? '').toLowerCase());
  }
  return out;
}

/** Seconds to keep a response of `status` with `headers`, or undefined when it is not kept. */
export function cacheTtl(status: number, headers: Headers, nowMs = Date.now()): number | undefined {
  const cc = cacheControl(headers.get('cache-control'));
  if (cc.has('no-store') || cc.has('no-cache')) return undefined;
  const priv = cc.get('private');
  if (priv === '') return undefined;
  const cookieAllowed = priv?.split(/\s*,\s*/).includes('set-cookie') ?? false;
  if (headers.has('set-cookie') && !cookieAllowed) return undefined;
  const seconds = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  let ttl = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age'));
  if (ttl === undefined && headers.has('expires')) {
    const expires = Date.parse(headers.get('expires') ?? '');
    const date = Date.parse(headers.get('date') ?? '');
    // An unparseable Expires means "already expired" (RFC 9111 section 5.3).
    ttl = Number.isFinite(expires)
      ? Math.floor((expires - (Number.isFinite(date) ? date : nowMs)) / 1000)
      : 0;
  }
  ttl ??= DEFAULT_TTL[status];
  if (ttl === undefined || ttl <= 0) return undefined;
  return Math.min(ttl, MAX_TTL_SECONDS);
}
