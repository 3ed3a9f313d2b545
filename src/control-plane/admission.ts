/**
 * Checks a write must pass before it is stored. Today: routes are owned (DESIGN.md §5). Within one
 * namespace two functions may not claim exactly the same route (otherwise the most specific wins);
 * across namespaces a route may not overlap another namespace's at all, since the more specific of
 * the two would take the other's requests and their credentials.
 */
import { KylixError } from '../errors.js';
import type { FunctionSpec } from '../resources/kinds.js';
import type { KObject } from '../resources/meta.js';
import { describeRoute, routesConflict, routesOverlap } from '../resources/routes.js';
import type { Registry } from './registry.js';
import type { IndexedFunction } from './route-index.js';

/** Rejects a Function whose routes collide with another function's (see the file comment). */
export async function checkRouteConflicts(object: KObject, registry: Registry): Promise<void> {
  if (object.kind !== 'Function') return;
  const routes = (object.spec as FunctionSpec).routes ?? [];
  if (routes.length === 0) return;
  const { namespace, name } = object.metadata;
  const causes: { field: string; message: string }[] = [];
  let foreignOwner: IndexedFunction | undefined;
  // Only Functions whose routes share a host and first path segment with ours (see route-index.ts).
  for (const other of (await registry.routes()).candidates(routes)) {
    const sameNamespace = other.namespace === namespace;
    if (sameNamespace && other.name === name) continue;
    const theirs = other.routes;
    routes.forEach((r, i) => {
      const clash = theirs.find((t) => (sameNamespace ? routesConflict(r, t) : routesOverlap(r, t)));
      if (!clash) return;
      if (!sameNamespace) foreignOwner ??= other;
      causes.push({
        field: `spec.routes[${i}]`,
        message: sameNamespace
          ? `"${describeRoute(r)}" is already served by function "${other.name}" in namespace "${other.namespace}" (route "${describeRoute(clash)}")`
          : `"${describeRoute(r)}" overlaps route "${describeRoute(clash)}" of function "${other.name}" in namespace "${other.namespace}", which owns it: a host or path one namespace serves cannot be served by another`,
      });
    });
  }
  if (causes.length === 0) return;
  throw new KylixError(
    'ERR_ROUTE_CONFLICT',
    foreignOwner
      ? `Function "${name}" claims routes that namespace "${foreignOwner.namespace}" owns (function "${foreignOwner.name}"). Choose a host or path no other namespace serves; methods do not separate namespaces.`
      : `Function "${name}" claims routes another function serves. Change the path, host or methods, or delete the other function first.`,
    causes,
  );
}
