/**
 * What a Function binds, read from its spec.bindings: whether the resources it names (a Database,
 * KeyValue, Queue or Bucket) exist yet, since it starts only once they do, and whether it binds a
 * given resource or Secret, whose creation or change makes the controller reconcile it again.
 */
import { BINDING_RESOURCE_KINDS } from '../../resources/binding-kinds.js';
import type { FunctionSpec } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import type { Registry } from '../registry.js';

/**
 * Why a spec cannot start yet: a binding names a Database, KeyValue, Queue or Bucket that does not
 * exist in the function's namespace. Undefined when all exist.
 */
export async function missingBindings(
  registry: Registry,
  namespace: string,
  spec: FunctionSpec,
): Promise<string | undefined> {
  const problems: string[] = [];
  for (const [env, b] of Object.entries(spec.bindings ?? {})) {
    for (const [key, kind] of Object.entries(BINDING_RESOURCE_KINDS)) {
      const ref = (b as Record<string, unknown>)[key];
      if (typeof ref !== 'string') continue;
      if (!(await registry.store.get(kind, namespace, ref)))
        problems.push(
          `binding ${env} names ${kind} "${ref}", which does not exist in namespace "${namespace}"`,
        );
    }
  }
  if (problems.length === 0) return undefined;
  return `${problems.join('; ')}. Apply ${problems.length === 1 ? 'it' : 'them'} (kylix apply -f), or fix spec.bindings.`;
}

/** Whether Function `fn` binds `o`, a resource of one of the bindable kinds. */
export function bindsResource(fn: KObject, o: KObject): boolean {
  const key = Object.entries(BINDING_RESOURCE_KINDS).find(([, kind]) => kind === o.kind)?.[0];
  if (!key) return false;
  const bindings = (fn.spec as FunctionSpec).bindings ?? {};
  return Object.values(bindings).some((b) => (b as Record<string, unknown>)[key] === o.metadata.name);
}

/** Whether Function `fn` binds the Secret named `secret` (of its own namespace). */
export function bindsSecret(fn: KObject, secret: string): boolean {
  const bindings = (fn.spec as FunctionSpec).bindings ?? {};
  return Object.values(bindings).some((b) => 'secret' in b && b.secret === secret);
}
