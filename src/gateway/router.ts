/**
 * The gateway's route table: host + path pattern (exact, ":param", trailing "*") + methods, mapped to
 * a function ("namespace/name"). Routes are owned (DESIGN.md §5): within one namespace the most
 * specific match wins and only exact clashes are refused; across namespaces no two routes may
 * overlap at all, and when they do anyway (two admissions racing on a fleet) the senior function
 * keeps the route and the other's overlapping route is skipped and reported, never served.
 */
import { namespaceOf } from '../bindings/identity.js';
import type { RouteSpec } from '../resources/kinds.js';
import {
  compiledOverlap,
  compileHost,
  compilePath,
  describeRoute,
  type HostPattern,
  routesConflict,
  routesOverlap,
  type Segment,
} from '../resources/routes.js';

export { describeRoute, routesConflict, routesOverlap };

interface CompiledRoute {
  functionKey: string;
  route: RouteSpec;
  segments: Segment[];
  /** Absent for a host-less route, which matches every host. */
  host?: HostPattern;
  /** Higher sorts first: literal segments, then fixed segments, then no wildcard. */
  score: [number, number, number];
}

/** The outcome of matching a request. */
export type RouteMatch =
  | { found: true; functionKey: string; route: RouteSpec; params: Record<string, string> }
  | { found: false; methodNotAllowed: boolean };

/** A route the router will not serve because another namespace's route overlaps it. */
export interface RefusedRoute {
  functionKey: string;
  route: RouteSpec;
  /** The function that owns the overlapping route, and that route. */
  owner: string;
  ownerRoute: RouteSpec;
}

function compileRoute(functionKey: string, route: RouteSpec): CompiledRoute {
  const segments = compilePath(route.path);
  const host = compileHost(route.host);
  return { functionKey, route, segments, ...(host ? { host } : {}), score: scoreOf(segments) };
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

/** Lower-cased, without a trailing dot: "Shop.Example.com.:8080" → "shop.example.com:8080". */
function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.(?=:\d+$|$)/, '');
}

/** `host` is normalized; a route host without a port takes every port, one with a port only that. */
function hostMatches(pattern: HostPattern, host: string): boolean {
  const port = /:(\d+)$/.exec(host);
  if (pattern.port && port?.[1] !== pattern.port) return false;
  const name = port ? host.slice(0, port.index) : host;
  if (pattern.wildcard) return name.endsWith(pattern.name) && name.length > pattern.name.length;
  return name === pattern.name;
}

interface FunctionEntry {
  routes: CompiledRoute[];
  /** When the function first claimed routes here: orders functions that gave no seniority. */
  seq: number;
}

/** See the file comment. */
export class Router {
  private readonly byFunction = new Map<string, FunctionEntry>();
  /** Sortable claims of seniority ("creationTimestamp"): the smallest owns an overlapping route. */
  private readonly seniority = new Map<string, string>();
  private seq = 0;
  /** Host-specific routes first (exact hosts before wildcards), then by specificity. */
  private sorted: CompiledRoute[] = [];
  private refusals: RefusedRoute[] = [];

  /**
   * @param onRefused told once about each route newly skipped because another namespace owns an
   *   overlapping one (by default a warning on stderr).
   */
  constructor(
    private readonly onRefused: (r: RefusedRoute) => void = (r) =>
      console.warn(
        `kylix: route "${describeRoute(r.route)}" of function ${r.functionKey} is not served: it overlaps route "${describeRoute(r.ownerRoute)}" of function ${r.owner}, in another namespace.`,
      ),
  ) {}

  /**
   * Replaces the routes of one function ("namespace/name"). `seniority`, when given, decides who
   * keeps a route two namespaces claim (see `setSeniority`).
   */
  setRoutes(functionKey: string, routes: RouteSpec[], seniority?: string): void {
    if (seniority !== undefined) this.seniority.set(functionKey, seniority);
    this.byFunction.set(functionKey, {
      routes: routes.map((route) => compileRoute(functionKey, route)),
      seq: this.byFunction.get(functionKey)?.seq ?? this.seq++,
    });
    this.rebuild();
  }

  /**
   * Records how senior a function is, as a string every node derives alike (its creationTimestamp):
   * of two namespaces' overlapping routes, the one of the smaller seniority is served, ties going to
   * the smaller key, so every node of a fleet picks the same owner whatever order it learned them
   * in. Functions without one rank after those with one, first come first served.
   */
  setSeniority(functionKey: string, seniority: string): void {
    if (this.seniority.get(functionKey) === seniority) return;
    this.seniority.set(functionKey, seniority);
    if (this.byFunction.has(functionKey)) this.rebuild();
  }

  /** Removes a function's routes; routes it owned may go to a function they were refused to. */
  remove(functionKey: string): void {
    this.seniority.delete(functionKey);
    if (this.byFunction.delete(functionKey)) this.rebuild();
  }

  /** The routes currently skipped because another namespace owns an overlapping route. */
  refused(): readonly RefusedRoute[] {
    return this.refusals;
  }

  /** Finds the function for a request. `path` excludes the query string. */
  match(host: string, method: string, path: string): RouteMatch {
    const parts = path.split('/').slice(1);
    const h = normalizeHost(host);
    let methodNotAllowed = false;
    for (const r of this.sorted) {
      if (r.host && !hostMatches(r.host, h)) continue;
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

  /** The order in which functions claim routes: seniority, then key; without seniority, arrival. */
  private compareClaims(a: [string, FunctionEntry], b: [string, FunctionEntry]): number {
    const sa = this.seniority.get(a[0]);
    const sb = this.seniority.get(b[0]);
    if (sa !== undefined && sb !== undefined)
      return sa < sb ? -1 : sa > sb ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
    if (sa !== undefined) return -1;
    if (sb !== undefined) return 1;
    return a[1].seq - b[1].seq;
  }

  /**
   * 1. Walks functions in claim order, 2. accepts each route unless an accepted route of another
   * namespace overlaps it, 3. reports routes newly refused, 4. sorts the accepted ones for matching.
   */
  private rebuild(): void {
    const accepted: CompiledRoute[] = [];
    // Accepted routes by first path segment: a route whose first segment is the literal "x" can
    // only overlap routes starting with "x", a parameter or a wildcard (kept under `open`).
    const byFirst = new Map<string, CompiledRoute[]>();
    const open: CompiledRoute[] = [];
    const refusals: RefusedRoute[] = [];
    const claims = [...this.byFunction].sort((a, b) => this.compareClaims(a, b));
    for (const [functionKey, entry] of claims) {
      const ns = namespaceOf(functionKey);
      for (const r of entry.routes) {
        const first = r.segments[0];
        const candidates =
          first?.kind === 'literal'
            ? [
                ...(byFirst.get(first.value) ?? []),
                // A parameter never matches the empty first segment of "/".
                ...(first.value === '' ? open.filter((o) => o.segments[0]?.kind === 'wildcard') : open),
              ]
            : accepted;
        const owner = candidates.find((o) => namespaceOf(o.functionKey) !== ns && compiledOverlap(o, r));
        if (owner) {
          refusals.push({ functionKey, route: r.route, owner: owner.functionKey, ownerRoute: owner.route });
          continue;
        }
        accepted.push(r);
        if (first?.kind === 'literal') {
          const list = byFirst.get(first.value);
          if (list) list.push(r);
          else byFirst.set(first.value, [r]);
        } else open.push(r);
      }
    }
    const known = new Set(this.refusals.map(refusalKey));
    this.refusals = refusals;
    for (const r of refusals) if (!known.has(refusalKey(r))) this.onRefused(r);
    const hostRank = (r: CompiledRoute) => (!r.host ? 2 : r.host.wildcard ? 1 : 0);
    this.sorted = accepted.sort((a, b) => hostRank(a) - hostRank(b) || compareScore(a, b));
  }
}

function refusalKey(r: RefusedRoute): string {
  return `${r.functionKey} ${describeRoute(r.route)} ${r.owner}`;
}
