/**
 * The one place that turns a (namespace, name) pair into the names backends store it under. Both
 * are DNS labels ([a-z0-9-], checked here), so a separator that neither can hold ("/" or "_") makes
 * every form injective: "a-b"+"c" and "a"+"b-c" never meet. Nothing else may build such names.
 */
import { createHash } from 'node:crypto';
import { checkRef } from './arguments.js';
import type { ResourceRef } from './provider.js';

/** The longest PostgreSQL identifier (NAMEDATALEN - 1 bytes); longer ones are silently cut. */
const PG_MAX = 63;
/** Hex digits of the hash in a shortened PostgreSQL identifier: 96 bits. */
const PG_HASH_HEX = 24;

/** Every name a resource has in a backend; see resourceIdentity(). */
export interface ResourceIdentity {
  /** "<namespace>/<name>": map keys, journal records, folders, Redis hash tags, S3 key prefixes. */
  readonly path: string;
  /** "<namespace>_<name>": one token with neither "/" nor ".", for NATS stream names and subjects. */
  readonly token: string;
  /** "kylix_<namespace>_<name>", or, past 63 bytes, its first bytes + "__" + a hash of the pair. */
  readonly sql: string;
}

/**
 * "<namespace>/<name>" for any namespaced object (function, resource, trigger target). Injective
 * because neither part can hold "/"; callers that take names from outside check them first.
 */
export function scopedKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The namespace of a scopedKey() or a resource's path: what comes before the first "/". */
export function namespaceOf(key: string): string {
  const i = key.indexOf('/');
  return i === -1 ? key : key.slice(0, i);
}

/** The namespace of a resourceIdentity().token: what comes before the first "_". */
export function namespaceOfToken(token: string): string {
  const i = token.indexOf('_');
  return i === -1 ? token : token.slice(0, i);
}

/** The name of a scopedKey(): what comes after the first "/". */
export function nameOf(key: string): string {
  const i = key.indexOf('/');
  return i === -1 ? key : key.slice(i + 1);
}

/**
 * The backend names of a resource, after checking that namespace and name are DNS labels (so that
 * the separators below cannot occur inside them and the mapping is injective).
 */
export function resourceIdentity(ref: ResourceRef): ResourceIdentity {
  checkRef(ref);
  // An internal space's second part starts with ":" (path) or "_" (token), which no DNS label can.
  const path = ref.internal ? `${ref.namespace}/:${ref.name}` : scopedKey(ref.namespace, ref.name);
  const token = ref.internal ? `${ref.namespace}__${ref.name}` : `${ref.namespace}_${ref.name}`;
  return { path, token, sql: sqlIdentifier(`kylix_${token}`, path) };
}

/** The internal spaces a namespace has: its Workers caches (`caches.default`, `caches.open(name)`). */
export type InternalSpace = 'caches';

/**
 * The ref under which a backend keeps one of a namespace's internal spaces. Its identity differs
 * from every resource's (of any namespace) and from every other namespace's space, so a function
 * reaches only its own namespace's caches, and no applied resource can alias them.
 */
export function internalSpace(namespace: string, space: InternalSpace): ResourceRef {
  return { namespace, name: space, internal: true };
}

/**
 * Fits `id` into PostgreSQL's 63 bytes. A full id holds exactly two single "_" (after "kylix" and
 * between namespace and name) and never "__"; a shortened one always holds "__", so the two forms
 * never meet, and shortened ones differ unless 96 bits of SHA-256 of the full pair collide.
 */
function sqlIdentifier(id: string, pair: string): string {
  if (id.length <= PG_MAX) return id;
  const hash = createHash('sha256').update(pair).digest('hex').slice(0, PG_HASH_HEX);
  return `${id.slice(0, PG_MAX - PG_HASH_HEX - 2)}__${hash}`;
}
