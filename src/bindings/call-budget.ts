/**
 * The size of a binding call's arguments, measured before anything else looks at them. A call
 * arrives v8-serialized from a sandbox, where some shapes cost almost nothing to send but a lot to
 * walk: a sparse array of length 2^32-1 is a few bytes on the wire, yet validation (zod walks an
 * array by its length), JSON.stringify or a provider would take minutes and gigabytes on it, in
 * the supervisor's one thread, for every tenant at once. So every array counts by its length, every
 * object and Map by its entries, and a call whose arguments pass ARGUMENT_NODES (or nest deeper than
 * ARGUMENT_DEPTH) is refused before validation. The walk itself stops at the budget, so it is cheap.
 */
import { KylixError } from '../errors.js';

/** Values (array slots, object properties, Map and Set entries) one call's arguments may hold. */
export const ARGUMENT_NODES = 1_000_000;
/** How deep one call's arguments may nest (objects in arrays in objects…). */
export const ARGUMENT_DEPTH = 64;

function isPrimitive(value: unknown): boolean {
  return typeof value !== 'object' || value === null;
}

/** Refuses a call whose arguments are too large to walk. */
function refuse(binding: string, op: string, why: string): never {
  throw new KylixError(
    'ERR_BINDING_BAD_ARGUMENTS',
    `env.${binding}.${op}() was called with arguments that ${why}; send fewer values, or store large data in a Bucket and pass its key.`,
  );
}

/** Throws ERR_BINDING_BAD_ARGUMENTS unless the arguments of `env.<binding>.<op>()` are within ARGUMENT_NODES and ARGUMENT_DEPTH. */
export function checkArgumentSize(args: unknown, binding: string, op: string): void {
  // Most calls are a few strings and numbers: nothing below them to walk.
  if (Array.isArray(args) && args.length <= ARGUMENT_NODES && args.every(isPrimitive)) return;
  let budget = ARGUMENT_NODES;
  // Iterative: a deep value must not overflow the supervisor's stack either. Only objects are
  // pushed (most calls' arguments are a few strings and numbers: nothing to walk below them).
  const values: object[] = [];
  const depths: number[] = [];
  if (typeof args === 'object' && args !== null) {
    values.push(args);
    depths.push(0);
  }
  while (values.length > 0) {
    const value = values.pop() as object;
    const depth = depths.pop() as number;
    // Bytes (Uint8Array, ArrayBuffer) are as big on the wire as in memory: one value each.
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) continue;
    if (depth >= ARGUMENT_DEPTH) refuse(binding, op, `nest more than ${ARGUMENT_DEPTH} levels deep`);
    // Counted before they are read: the length of a sparse array is what a walk would pay for.
    let children: Iterable<unknown>;
    let count: number;
    if (Array.isArray(value)) {
      count = value.length;
      children = value;
    } else if (value instanceof Map) {
      count = value.size * 2;
      children = [...value.keys(), ...value.values()];
    } else if (value instanceof Set) {
      count = value.size;
      children = value;
    } else {
      const keys = Object.keys(value);
      count = keys.length;
      children = keys.map((k) => (value as Record<string, unknown>)[k]);
    }
    budget -= count;
    if (budget < 0) refuse(binding, op, `hold more than ${ARGUMENT_NODES} values`);
    for (const child of children)
      if (typeof child === 'object' && child !== null) {
        values.push(child);
        depths.push(depth + 1);
      }
  }
}
