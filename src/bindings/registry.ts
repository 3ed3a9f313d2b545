/**
 * The registry of binding kinds, as miniflare's PLUGINS: every kind's definition (its folder's
 * kind.ts) keyed by its name constant. The broker, the providers, the resource controller, the
 * data API and the installation config take their lists of kinds and operations from here.
 * Adding a kind: its folder with a kind.ts, one line here, its name in resources/binding-kinds.ts.
 */
import type { z } from 'zod';
import {
  type BINDING_RESOURCE_KINDS,
  type BindingKindName,
  BUCKET,
  DATABASE,
  KEY_VALUE,
  QUEUE,
} from '../resources/binding-kinds.js';
import type { FunctionSpec } from '../resources/kinds.js';
import { bucketKind } from './bucket/kind.js';
import { cacheKind } from './cache/kind.js';
import { databaseKind } from './database/kind.js';
import { keyValueKind } from './keyvalue/kind.js';
import type { AnyBindingKind } from './kind.js';
import { queueKind } from './queue/kind.js';

/** Every binding kind, by name, in apply order (the order of resources/binding-kinds.ts). */
export const BINDING_KINDS = {
  [DATABASE]: databaseKind,
  [KEY_VALUE]: keyValueKind,
  [QUEUE]: queueKind,
  [BUCKET]: bucketKind,
} as const;

/**
 * Capabilities every function has without a manifest binding, by the binding name the guest
 * calls them under (which no manifest binding can have): the Workers `caches`.
 */
export const IMPLICIT_BINDINGS = {
  [cacheKind.binding]: cacheKind,
} as const;

/** The implicit binding called `binding`, if there is one. */
export function implicitBinding(
  binding: string,
): (typeof IMPLICIT_BINDINGS)[keyof typeof IMPLICIT_BINDINGS] | undefined {
  return Object.hasOwn(IMPLICIT_BINDINGS, binding)
    ? IMPLICIT_BINDINGS[binding as keyof typeof IMPLICIT_BINDINGS]
    : undefined;
}

/** The registry's kinds, typed alike, in apply order. */
export const ALL_BINDING_KINDS: readonly AnyBindingKind[] = Object.values(BINDING_KINDS);

/** The provider a kind's bindings call ("keyValue" → KeyValueProvider). */
export type ProviderOf<K extends BindingKindName> = Awaited<ReturnType<(typeof BINDING_KINDS)[K]['open']>>;

/** A kind's validated section of the installation config. */
export type ConfigOf<K extends BindingKindName> = z.output<(typeof BINDING_KINDS)[K]['config']>;

/** The providers, one per kind, each created on first use so an unused backend costs nothing. */
export type Providers = { [K in BindingKindName]: () => Promise<ProviderOf<K>> };

/** The kind that binds resources of `resourceKind` ("KeyValue" → the keyValue kind), if any. */
export function kindOfResource(resourceKind: string): AnyBindingKind | undefined {
  return ALL_BINDING_KINDS.find((k) => k.resourceKind === resourceKind);
}

// Compile-time checks that the registry, the names and the manifest's binding keys agree.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type KeysOf<T> = T extends unknown ? keyof T : never;
type ManifestBindingKey = Exclude<KeysOf<FunctionSpec['bindings'][string]>, 'secret' | 'key'>;
const registryCoversNames: Same<keyof typeof BINDING_KINDS, BindingKindName> = true;
const manifestMatchesNames: Same<ManifestBindingKey, BindingKindName> = true;
const resourceKindsMatch: Same<
  { [K in BindingKindName]: (typeof BINDING_KINDS)[K]['resourceKind'] },
  typeof BINDING_RESOURCE_KINDS
> = true;
void [registryCoversNames, manifestMatchesNames, resourceKindsMatch];
