/**
 * Checks a write must pass before it is stored. Today: two functions may not claim the same route.
 */
import { KylixError } from '../errors.js';
import { routesConflict } from '../gateway/router.js';
import type { FunctionSpec, RouteSpec } from '../resources/kinds.js';
import type { KObject } from '../resources/meta.js';
import type { Registry } from './registry.js';

function describeRoute(r: RouteSpec): string {
  return `${r.methods ? r.methods.join(',') : '*'} ${r.host ?? ''}${r.path}`;
}

/** Rejects a Function whose routes collide with another function's (in any namespace). */
export async function checkRouteConflicts(object: KObject, registry: Registry): Promise<void> {
  if (object.kind !== 'Function') return;
  const routes = (object.spec as FunctionSpec).routes;
  const causes: { field: string; message: string }[] = [];
  for (const other of await registry.list('Function', undefined)) {
    if (
      other.metadata.namespace === object.metadata.namespace &&
      other.metadata.name === object.metadata.name
    )
      continue;
    const theirs = (other.spec as FunctionSpec).routes ?? [];
    routes.forEach((r, i) => {
      const clash = theirs.find((t) => routesConflict(r, t));
      if (clash) {
        causes.push({
          field: `spec.routes[${i}]`,
          message: `"${describeRoute(r)}" is already served by function "${other.metadata.name}" in namespace "${other.metadata.namespace}" (route "${describeRoute(clash)}")`,
        });
      }
    });
  }
  if (causes.length > 0) {
    throw new KylixError(
      'ERR_ROUTE_CONFLICT',
      `Function "${object.metadata.name}" claims routes another function serves. Change the path, host or methods, or delete the other function first.`,
      causes,
    );
  }
}
