/**
 * What a SQL statement's parameters may be, checked before a backend sees them: null (or undefined),
 * a boolean, a number, a bigint, a string, a valid Date, bytes (a Uint8Array, sent as bytea), an
 * array of these (a PostgreSQL array), or a plain object (sent as JSON). Both drivers would take
 * more and fail in their own way — an invalid Date threw a RangeError that reached the function as
 * an unavailable backend, a Map was sent as `{}` — so anything else is refused here as a bad
 * argument, naming the parameter and what to pass instead.
 */
import { z } from 'zod';

/** Nesting past this in one parameter (arrays in arrays, objects in objects) is refused. */
const MAX_DEPTH = 64;

/** Why `value` cannot be a parameter, or undefined when it can. */
function problem(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
    case 'number':
    case 'bigint':
    case 'string':
      return undefined;
    case 'object':
      break;
    default:
      return `a ${typeof value} cannot be sent to the database`;
  }
  if (value === null || value instanceof Uint8Array) return undefined;
  if (depth > MAX_DEPTH) return `it nests deeper than ${MAX_DEPTH} levels`;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? 'it is an invalid Date (its time is NaN)' : undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const p = problem(item, depth + 1);
      if (p !== undefined) return `an element of its array: ${p}`;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null)
    return `a ${proto?.constructor?.name ?? 'non-plain object'} cannot be sent to the database (pass a plain object for JSON, or convert it to a string)`;
  try {
    // Sent as JSON: a bigint inside or a cycle would fail in the driver.
    JSON.stringify(value);
  } catch (err) {
    return `it cannot be sent as JSON (${(err as Error).message})`;
  }
  return undefined;
}

/** A statement's parameter list: at most 65,535 (PostgreSQL's own limit), each as the file comment says. */
export const sqlParams = z
  .array(z.unknown())
  .max(65535)
  .superRefine((params, ctx) => {
    for (let i = 0; i < params.length; i++) {
      const p = problem(params[i], 0);
      if (p !== undefined) {
        ctx.addIssue({ code: 'custom', path: [i], message: `SQL parameter $${i + 1}: ${p}` });
        return;
      }
    }
  });
