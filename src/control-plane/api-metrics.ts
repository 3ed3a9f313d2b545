/**
 * The control API's metrics: a middleware that counts every API request by verb, kind and status
 * code, and GET /metrics, the node's Prometheus exposition. The middleware goes first (it must see
 * every answer, refusals included); the route goes after the token check, so in `kylix server`
 * /metrics needs the API token like the rest of the API, and under `kylix dev` it is open.
 */
import type { ServerResponse } from 'node:http';
import type { Hono, MiddlewareHandler } from 'hono';
import { KINDS } from '../resources/kinds.js';
import { API_VERSION } from '../resources/meta.js';

/** What the API needs of the node's metrics. */
export interface ApiMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  apiRequest(verb: string, kind: string, code: number, seconds: number): void;
  /** Counts a watch stream opened; the returned function counts it closed. */
  watchOpened?(kind: string): () => void;
}

const PREFIX = `/apis/${API_VERSION}/`;
/** The resource plurals: the only values the `kind` label takes under /apis (else "other"). */
const PLURALS = new Set(Object.values(KINDS).map((k) => k.plural));
/** Subresources the API serves: the only sub-verbs that become labels (else "other"). */
const SUBRESOURCES = new Set([
  'log',
  'stats',
  'metrics-history',
  'read-query',
  'proxy',
  'health',
  'keys',
  'query',
  'messages',
  'redrive',
  'objects',
]);
/** Top-level paths outside /apis that are labelled by name. */
const TOP = new Set(['metrics', 'healthz', 'readyz', 'version', 'apis', 'kylix']);
/** HTTP methods that become labels as they are (else "other"). */
const METHODS = new Set(['get', 'head', 'post', 'put', 'patch', 'delete', 'options']);

/**
 * The Kubernetes-style verb and the kind (resource plural or Kylix subresource) of an API request,
 * from its method and URL shape only, so the label values stay a small fixed set.
 */
export function verbAndKind(
  method: string,
  path: string,
  query: URLSearchParams,
): { verb: string; kind: string } {
  const m = method.toUpperCase();
  const lower = METHODS.has(m.toLowerCase()) ? m.toLowerCase() : 'other';
  if (!path.startsWith(PREFIX)) {
    const parts = path.split('/');
    const first = parts[1] ?? '';
    // /kylix/v1/bundles, /kylix/v1/secrets/…: Kylix's own APIs, labelled by their third segment.
    if (first === 'kylix')
      return { verb: lower, kind: parts[3] === 'bundles' || parts[3] === 'secrets' ? parts[3] : 'other' };
    return { verb: lower, kind: TOP.has(first) ? first : 'other' };
  }
  // /apis/kylix.dev/v1/[namespaces/{ns}/]{plural}[/{name}[/{sub}…]]
  let parts = path.slice(PREFIX.length).split('/').filter(Boolean);
  if (parts[0] === 'namespaces' && parts.length >= 3) parts = parts.slice(2);
  const plural = parts[0] ?? '';
  const kind = PLURALS.has(plural) ? plural : 'other';
  const sub = parts[2];
  if (sub) return { verb: SUBRESOURCES.has(sub) ? sub : 'other', kind };
  const named = parts.length >= 2;
  const verb =
    m === 'GET'
      ? query.get('watch') === 'true' || query.get('watch') === '1'
        ? 'watch'
        : named
          ? 'get'
          : 'list'
      : (({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[m] ??
        lower);
  return { verb, kind };
}

/** Counts and times every API request (mounted before every other route and middleware). */
export function apiMetricsMiddleware(metrics: ApiMetrics | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!metrics) return next();
    const started = performance.now();
    try {
      await next();
    } finally {
      const url = new URL(c.req.url);
      const { verb, kind } = verbAndKind(c.req.method, url.pathname, url.searchParams);
      metrics.apiRequest(verb, kind, c.res.status, (performance.now() - started) / 1000);
      // A watch that started streaming is a client until its connection closes.
      const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
      if (verb === 'watch' && c.res.status === 200 && metrics.watchOpened && outgoing && !outgoing.closed)
        outgoing.once('close', metrics.watchOpened(kind));
    }
  };
}

/** GET /metrics: the Prometheus text exposition (mounted after the token check). */
// biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its bindings.
export function addMetricsRoute(app: Hono<any>, metrics: ApiMetrics | undefined): void {
  if (!metrics) return;
  app.get('/metrics', async (c) =>
    c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }),
  );
}
