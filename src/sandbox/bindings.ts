/**
 * The binding objects a function finds in env, shaped like Cloudflare's so Workers code ports:
 * one file per kind in bindings/ (KV namespaces, a SQL database, queue producers, R2-style
 * buckets). Every call becomes one request to the supervisor (`rpc`), which checks it against the
 * manifest and the kind's operations (src/bindings/registry.ts) before any backend runs.
 */
import type { BindingKindName } from '../resources/binding-kinds.js';
import { bucketBinding } from './bindings/bucket.js';
import type { Rpc } from './bindings/common.js';
import { databaseBinding } from './bindings/database.js';
import { keyValueBinding } from './bindings/keyvalue.js';
import { queueBinding } from './bindings/queue.js';

/** How a binding is declared in the manifest (the sandbox only needs the kind). */
export type BindingKind = BindingKindName;

/** The binding object's factory, per kind. */
const FACTORIES: { [K in BindingKindName]: (rpc: Rpc, name: string) => object } = {
  database: databaseBinding,
  keyValue: keyValueBinding,
  queue: queueBinding,
  bucket: bucketBinding,
};

/**
 * Builds env: plain vars and secrets as strings, typed vars (spec.vars) as their JSON values, each
 * bound resource as its binding object. Typed vars are deep-copied per instance, so what one
 * instance changes in env.CONFIG no other sees. Not frozen: as on Workers, env is one plain object
 * per instance that code may add to (Cloudflare's D1 template keeps its router on it between
 * requests); the binding objects themselves are not its to change, and every call they make is
 * checked by the supervisor.
 */
export function buildEnv(
  rpc: Rpc,
  vars: Record<string, string>,
  bindings: Record<string, BindingKind>,
  typed: Record<string, unknown> = {},
): Record<string, unknown> {
  const env: Record<string, unknown> = { ...vars };
  // Own data properties, as Workers' env has: a key such as "__proto__" stays a key.
  for (const [name, value] of Object.entries(typed))
    Object.defineProperty(env, name, {
      value: structuredClone(value),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  for (const [name, kind] of Object.entries(bindings)) env[name] = FACTORIES[kind](rpc, name);
  return env;
}
