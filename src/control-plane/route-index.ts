/**
 * The routes of every Function, indexed by host and first path segment, so that admission checks a
 * new Function's routes against the few that could overlap them, not against every Function
 * (DESIGN.md §5; with 1,000 Functions a full list made each write slow).
 *
 * A route's keys: its host (a wildcard's suffix) cut to its last two labels, or ANY_HOST for a
 * host-less route (which overlaps every host) and for a wildcard too short to cut; and its first
 * path segment, or ANY_SEGMENT for a parameter or "*". Two routes can only overlap when their keys
 * meet: equal, or one of them ANY. A key is a coarse bucket; routesOverlap decides.
 *
 * The index is fed with every object version the store hands out (the registry's own writes, as
 * they return, and the store's watch, which on a fleet carries other nodes' writes) and keeps the
 * newest by resourceVersion, so feeding one version twice, or late, changes nothing.
 */
import type { FunctionSpec, RouteSpec } from '../resources/kinds.js';
import type { KObject } from '../resources/meta.js';

const ANY_HOST = '*';
const ANY_SEGMENT = '\0*';

/** What the index knows of one Function: enough for admission and its messages. */
export interface IndexedFunction {
  namespace: string;
  name: string;
  routes: RouteSpec[];
}

interface Entry extends IndexedFunction {
  rv: number;
  keys: string[];
}

/** The host keys of a route (see the file comment); a "--" tag prefix adds the untagged host's key. */
function hostKeys(host: string | undefined): string[] {
  if (!host) return [ANY_HOST];
  const name = host.toLowerCase().replace(/:\d+$/, '');
  const wildcard = name.startsWith('*.');
  const bare = wildcard ? name.slice(2) : name;
  const cut = (h: string) => {
    const labels = h.split('.');
    if (wildcard && labels.length < 2) return ANY_HOST;
    return labels.slice(-2).join('.');
  };
  const keys = new Set([cut(bare)]);
  const tag = bare.indexOf('--');
  if (tag > 0) keys.add(cut(bare.slice(tag + 2)));
  return [...keys];
}

function segmentKey(path: string): string {
  const first = path.split('/')[1] ?? '';
  return first === '*' || first.startsWith(':') ? ANY_SEGMENT : first;
}

function keysOf(route: RouteSpec): string[] {
  const segment = segmentKey(route.path);
  return hostKeys(route.host).map((h) => `${h}\n${segment}`);
}

/** See the file comment. */
export class RouteIndex {
  private readonly functions = new Map<string, Entry>();
  /** The resourceVersion of each Function's last deletion, so a late older version is not revived. */
  private readonly deleted = new Map<string, number>();
  /** host key → segment key → function keys. */
  private readonly buckets = new Map<string, Map<string, Set<string>>>();

  /** Records a Function as stored (or, with `deleted`, its deletion); other kinds are ignored. */
  update(object: KObject, deleted = false): void {
    if (object.kind !== 'Function') return;
    const { namespace, name } = object.metadata;
    const key = `${namespace}/${name}`;
    const rv = Number(object.metadata.resourceVersion) || 0;
    const known = this.functions.get(key)?.rv ?? this.deleted.get(key) ?? -1;
    if (rv < known) return;
    this.remove(key);
    if (deleted) {
      this.deleted.set(key, rv);
      return;
    }
    this.deleted.delete(key);
    const routes = ((object.spec as FunctionSpec | undefined)?.routes ?? []) as RouteSpec[];
    const keys = [...new Set(routes.flatMap(keysOf))];
    this.functions.set(key, { namespace, name, routes, rv, keys });
    for (const k of keys) {
      const [host, segment] = k.split('\n') as [string, string];
      const bySegment = this.buckets.get(host) ?? new Map<string, Set<string>>();
      this.buckets.set(host, bySegment);
      const set = bySegment.get(segment) ?? new Set<string>();
      bySegment.set(segment, set);
      set.add(key);
    }
  }

  /** Forgets everything (before a rebuild from a fresh list). */
  clear(): void {
    this.functions.clear();
    this.deleted.clear();
    this.buckets.clear();
  }

  /** The Functions with a route that might overlap one of `routes`, in namespace/name order. */
  candidates(routes: readonly RouteSpec[]): IndexedFunction[] {
    const found = new Set<string>();
    for (const route of routes) {
      const segment = segmentKey(route.path);
      for (const h of hostKeys(route.host)) {
        const hosts =
          h === ANY_HOST ? [...this.buckets.values()] : [this.buckets.get(h), this.buckets.get(ANY_HOST)];
        for (const bySegment of hosts) {
          if (!bySegment) continue;
          const sets =
            segment === ANY_SEGMENT
              ? [...bySegment.values()]
              : [bySegment.get(segment), bySegment.get(ANY_SEGMENT)];
          for (const set of sets) for (const k of set ?? []) found.add(k);
        }
      }
    }
    return [...found]
      .sort()
      .map((k) => this.functions.get(k))
      .filter((e): e is Entry => e !== undefined);
  }

  /** How many Functions the index holds. */
  get size(): number {
    return this.functions.size;
  }

  private remove(key: string): void {
    const entry = this.functions.get(key);
    if (!entry) return;
    this.functions.delete(key);
    for (const k of entry.keys) {
      const [host, segment] = k.split('\n') as [string, string];
      const bySegment = this.buckets.get(host);
      const set = bySegment?.get(segment);
      set?.delete(key);
      if (set?.size === 0) bySegment?.delete(segment);
      if (bySegment?.size === 0) this.buckets.delete(host);
    }
  }
}
