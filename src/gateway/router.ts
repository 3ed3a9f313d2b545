/**
 * The gateway's route table: host + path pattern (exact, ":param", trailing "*") + methods, mapped to
 * a function. The most specific match wins; two functions may not claim the same route.
 */
import type { RouteSpec } from '../resources/kinds.js';

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'wildcard' };

interface CompiledRoute {
  functionKey: string;
  route: RouteSpec;
  segments: Segment[];
  /** Higher sorts first: literal segments, then fixed segments, then no wildcard. */
  score: [number, number, number];
}

/** The outcome of matching a request. */
export type RouteMatch =
  | { found: true; functionKey: string; route: RouteSpec; params: Record<string, string> }
  | { found: false; methodNotAllowed: boolean };

function compile(path: string): Segment[] {
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

function scoreOf(segments: Segment[]): [number, number, number] {
  const literals = segments.filter((s) => s.kind === 'literal').length;
  const fixed = segments.filter((s) => s.kind !== 'wildcard').length;
  return [literals, fixed, segments.some((s) => s.kind === 'wildcard') ? 0 : 1];
}

function compareScore(a: CompiledRoute, b: CompiledRoute): number {
  for (let i = 0; i < 3; i++) {
    const d = (b.score[i] ?? 0) - (a.score[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.kind === 'wildcard') return params;
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (seg.value !== part) return undefined;
    } else {
      if (part === '') return undefined;
      params[seg.name] = safeDecode(part);
    }
  }
  return parts.length === segments.length ? params : undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The pattern with parameter names erased, so "/u/:id" and "/u/:name" compare equal. */
function normalizedPattern(path: string): string {
  return path.replace(/\/:[^/]+/g, '/:');
}

/** True when two routes would serve the same requests (same host, pattern and an overlapping method). */
export function routesConflict(a: RouteSpec, b: RouteSpec): boolean {
  if ((a.host ?? '') !== (b.host ?? '')) return false;
  if (normalizedPattern(a.path) !== normalizedPattern(b.path)) return false;
  if (!a.methods || !b.methods) return true;
  return a.methods.some((m) => b.methods?.includes(m));
}

function hostMatches(routeHost: string, host: string): boolean {
  const bare = routeHost.includes(':') ? host : host.replace(/:\d+$/, '');
  if (routeHost.startsWith('*.'))
    return bare.endsWith(routeHost.slice(1)) && bare.length > routeHost.length - 1;
  return bare === routeHost;
}

/** See the file comment. */
export class Router {
  private readonly byFunction = new Map<string, CompiledRoute[]>();
  /** Host-specific routes first (exact hosts before wildcards), then by specificity. */
  private sorted: CompiledRoute[] = [];

  /** Replaces the routes of one function ("namespace/name"). */
  setRoutes(functionKey: string, routes: RouteSpec[]): void {
    this.byFunction.set(
      functionKey,
      routes.map((route) => {
        const segments = compile(route.path);
        return { functionKey, route, segments, score: scoreOf(segments) };
      }),
    );
    this.rebuild();
  }

  /** Removes a function's routes. */
  remove(functionKey: string): void {
    if (this.byFunction.delete(functionKey)) this.rebuild();
  }

  /** Finds the function for a request. `path` excludes the query string. */
  match(host: string, method: string, path: string): RouteMatch {
    const parts = path.split('/').slice(1);
    let methodNotAllowed = false;
    for (const r of this.sorted) {
      if (r.route.host && !hostMatches(r.route.host, host)) continue;
      const params = matchSegments(r.segments, parts);
      if (!params) continue;
      const m = method === 'HEAD' ? ['HEAD', 'GET'] : [method];
      if (r.route.methods && !r.route.methods.some((x) => m.includes(x))) {
        methodNotAllowed = true;
        continue;
      }
      return { found: true, functionKey: r.functionKey, route: r.route, params };
    }
    return { found: false, methodNotAllowed };
  }

  private rebuild(): void {
    const all = [...this.byFunction.values()].flat();
    const hostRank = (r: CompiledRoute) => (!r.route.host ? 2 : r.route.host.startsWith('*.') ? 1 : 0);
    this.sorted = all.sort((a, b) => hostRank(a) - hostRank(b) || compareScore(a, b));
  }
}
