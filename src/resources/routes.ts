/**
 * Route patterns as data, shared by admission (control plane) and the router (gateway): how a
 * route's path and host are taken apart, and when two routes claim the same requests. Pure: no
 * state, no I/O.
 */
import type { RouteSpec } from './kinds.js';

/** One path segment of a route pattern. */
export type Segment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  | { kind: 'wildcard' };

/** A route host taken apart: "*.example.com:8080" → suffix ".example.com", port "8080". */
export interface HostPattern {
  /** The whole name, or for a wildcard the suffix after "*" (".example.com"). */
  name: string;
  wildcard: boolean;
  port?: string;
}

/** A path pattern's segments. */
export function compilePath(path: string): Segment[] {
  return path
    .split('/')
    .slice(1)
    .map(
      (s): Segment =>
        s === '*'
          ? { kind: 'wildcard' }
          : s.startsWith(':')
            ? { kind: 'param', name: s.slice(1) }
            : { kind: 'literal', value: s },
    );
}

/** A route host taken apart (lower-cased), or undefined for a host-less route. */
export function compileHost(host: string | undefined): HostPattern | undefined {
  if (!host) return undefined;
  const lower = host.toLowerCase();
  const colon = lower.lastIndexOf(':');
  const name = colon === -1 ? lower : lower.slice(0, colon);
  const port = colon === -1 ? undefined : lower.slice(colon + 1);
  const wildcard = name.startsWith('*.');
  return { name: wildcard ? name.slice(1) : name, wildcard, ...(port ? { port } : {}) };
}

/** The pattern with parameter names erased, so "/u/:id" and "/u/:name" compare equal. */
function normalizedPattern(path: string): string {
  return path.replace(/\/:[^/]+/g, '/:');
}

/**
 * True when two routes of ONE namespace would serve the same requests (same host, pattern and an
 * overlapping method). Between namespaces the stricter `routesOverlap` applies.
 */
export function routesConflict(a: RouteSpec, b: RouteSpec): boolean {
  if ((a.host ?? '') !== (b.host ?? '')) return false;
  if (normalizedPattern(a.path) !== normalizedPattern(b.path)) return false;
  if (!a.methods || !b.methods) return true;
  return a.methods.some((m) => b.methods?.includes(m));
}

/**
 * True when some request (host, path; methods are ignored) could be matched by both routes: the
 * rule for routes of DIFFERENT namespaces, where any overlap would let the more specific one take
 * the other's traffic. A host-less route overlaps every host-qualified route with an overlapping path.
 */
export function routesOverlap(a: RouteSpec, b: RouteSpec): boolean {
  return compiledOverlap(compiled(a), compiled(b));
}

/** Whether two compiled routes (path segments and host) could match the same request. */
export function compiledOverlap(
  a: { segments: Segment[]; host?: HostPattern },
  b: { segments: Segment[]; host?: HostPattern },
): boolean {
  return hostsOverlap(a.host, b.host) && pathsOverlap(a.segments, b.segments);
}

/** Whether one Host header could match both (see `hostMatches`: a port-less route host takes any port). */
function hostsOverlap(a: HostPattern | undefined, b: HostPattern | undefined): boolean {
  if (!a || !b) return true;
  return untagged(a).some((x) => untagged(b).some((y) => patternsOverlap(x, y)));
}

/**
 * The pattern, and for a host with "--" in it also the host after it: the gateway first reads
 * "rc--shop.example.com" as tag "rc" of shop.example.com (traffic.ts), so such a route host also
 * stands for the host its users' requests may go to.
 */
function untagged(p: HostPattern): HostPattern[] {
  const i = p.name.indexOf('--');
  if (i <= 0) return [p];
  return [p, { name: p.name.slice(i + 2), wildcard: false, ...(p.port ? { port: p.port } : {}) }];
}

function patternsOverlap(a: HostPattern, b: HostPattern): boolean {
  if (a.port && b.port && a.port !== b.port) return false;
  if (!a.wildcard && !b.wildcard) return a.name === b.name;
  // "*.x" takes names ending in ".x" with at least one more character before it.
  if (a.wildcard && b.wildcard) return a.name.endsWith(b.name) || b.name.endsWith(a.name);
  const [wild, exact] = a.wildcard ? [a, b] : [b, a];
  return exact.name.endsWith(wild.name) && exact.name.length > wild.name.length;
}

/**
 * Whether some path matches both patterns (see `matchSegments`): a trailing "*" takes any rest,
 * even none ("/api/*" matches "/api"); a ":param" takes one non-empty segment; a literal only
 * itself, and "" (a trailing slash, or the root "/") only an empty segment.
 */
function pathsOverlap(a: Segment[], b: Segment[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x?.kind === 'wildcard' || y?.kind === 'wildcard') return true;
    if (!x || !y) return !x && !y;
    if (x.kind === 'literal' && y.kind === 'literal') {
      if (x.value !== y.value) return false;
    } else if (x.kind === 'literal' || y.kind === 'literal') {
      // A parameter never matches an empty segment.
      if ((x.kind === 'literal' ? x.value : (y as { value: string }).value) === '') return false;
    }
  }
}

function compiled(r: RouteSpec): { segments: Segment[]; host?: HostPattern } {
  const host = compileHost(r.host);
  return { segments: compilePath(r.path), ...(host ? { host } : {}) };
}

/** A route as users write it: "GET,POST shop.example.com/api/*" ("*" for every method). */
export function describeRoute(r: RouteSpec): string {
  return `${r.methods ? r.methods.join(',') : '*'} ${r.host ?? ''}${r.path}`;
}
