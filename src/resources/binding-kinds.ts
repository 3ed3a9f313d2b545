/**
 * The names of the binding kinds, and nothing else, so that every layer may share them: the key a
 * manifest binding uses (`{ keyValue: cache }`), which also names the kind in the installation
 * config and in the registry of kinds (src/bindings/registry.ts), and the resource kind it binds.
 * The CLI orders, waits and purges by this list; the guest types its InstanceSpec by it (types
 * only). It imports nothing. Everything else about a kind lives in src/bindings/<kind>/kind.ts.
 */

/** A Database binding: `{ database: <name> }`. */
export const DATABASE = 'database';
/** A KeyValue binding: `{ keyValue: <name> }`. */
export const KEY_VALUE = 'keyValue';
/** A Queue (producer) binding: `{ queue: <name> }`. */
export const QUEUE = 'queue';
/** A Bucket binding: `{ bucket: <name> }`. */
export const BUCKET = 'bucket';

/** Each binding kind's resource kind, in the order `kylix apply` applies them. */
export const BINDING_RESOURCE_KINDS = {
  [DATABASE]: 'Database',
  [KEY_VALUE]: 'KeyValue',
  [QUEUE]: 'Queue',
  [BUCKET]: 'Bucket',
} as const;

/** The name of a binding kind ("keyValue"). */
export type BindingKindName = keyof typeof BINDING_RESOURCE_KINDS;
/** The resource kind a binding kind binds ("KeyValue"). */
export type BindingResourceKind = (typeof BINDING_RESOURCE_KINDS)[BindingKindName];

/** The binding kinds' names, in apply order. */
export const BINDING_KIND_NAMES = Object.keys(BINDING_RESOURCE_KINDS) as BindingKindName[];

/** The resource kinds that bindings bind, in apply order. */
export const BINDING_RESOURCE_KIND_LIST: readonly BindingResourceKind[] =
  Object.values(BINDING_RESOURCE_KINDS);
