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

/** Throws ERR_BINDING_BAD_ARGUMENTS unless `args` is within ARGUMENT_NODES and ARGUMENT_DEPTH. */
export function checkArgumentSize(args: unknown, what: string): void {
  let budget = ARGUMENT_NODES;
  const refuse = (why: string) => {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `${what} was called with arguments that ${why}; send fewer values, or store large data in a Bucket and pass its key.`,
    );
  };
  // Iterative: a deep value must not overflow the supervisor's stack either.
  const stack: [unknown, number][] = [[args, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== 'object' || value === null) continue;
    // Bytes (Uint8Array, ArrayBuffer) are as big on the wire as in memory: one value each.
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) continue;
    if (depth >= ARGUMENT_DEPTH) refuse(`nest more than ${ARGUMENT_DEPTH} levels deep`);
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
    if (budget < 0) refuse(`hold more than ${ARGUMENT_NODES} values`);
    for (const child of children) stack.push([child, depth + 1]);
  }
}
