/**
 * The payload of binding calls and their results (RPC and RPC_RESULT frames), shared by both ends.
 *
 * Node's structured clone (`v8.serialize`) costs 4–8 µs per value on each side, four times per
 * binding call: a fifth of the call's CPU, measured. Almost every call and result is made of
 * strings, numbers, booleans, null, bytes, arrays, plain objects, dates and bigints, so those go in a
 * compact form written and read by hand; anything else (a Map, a Set, a sparse array, an object
 * with a class…) sends the whole value as a structured clone, as before. The first byte says which.
 *
 * Compact form, each value a tag byte and its data (numbers little-endian, lengths u32):
 * undefined, null, false, true; int32; float64; string (UTF-8 bytes, or UTF-16 code units when it
 * holds a lone surrogate); bytes (a Uint8Array or a Buffer, read back as a plain Uint8Array); array
 * (count, values); object (count, then key string and value for each own enumerable string key);
 * date (float64 time); bigint (its decimal digits); other typed arrays, DataViews and ArrayBuffers
 * (a kind byte, then their bytes). Whatever is read is a copy: nothing keeps the socket's memory.
 * Two differences from structured clone: an array's named properties (`Object.assign([1], { x })`)
 * are not sent, and when the writer meets a value only a clone can send after it ran a getter, the
 * clone runs that getter again.
 *
 * The supervisor reads what a sandbox process sends, so the reader trusts nothing:
 * - every length is checked against the bytes left, and the value must end where the payload does;
 * - nesting is bounded, and so are the values one payload may make (`maxValues`, counted before an
 *   array or object is made; a byte each on the wire is 50 or more in memory), which answers a
 *   function that asks too much with an error (PayloadTooLarge) instead of building it;
 * - a structured clone cannot be bounded as it is read, so the supervisor takes one only up to
 *   `maxCloneBytes`;
 * - keys are defined, never assigned (a key "__proto__" is an own property, as structured clone
 *   makes it).
 * What the value holds is then checked as before (the broker: call-budget.ts, the kind's schema).
 * The writer refuses a frame larger than the channel carries (MAX_FRAME_BYTES), and gives back the
 * memory a large one needed.
 */
import { Buffer } from 'node:buffer';
import { isProxy } from 'node:util/types';
import { serialize } from 'node:v8';
import { MAX_FRAME_BYTES } from './channel.js';
import {
  BINARY_KINDS,
  COMPACT,
  KEEP_SCRATCH_BYTES,
  MAX_BIGINT_DIGITS,
  MAX_COMPACT_ARRAY,
  MAX_DEPTH,
  MAX_KEY_BYTES,
  MEASURE_STRING_CHARS,
  PayloadTooLarge,
  STRUCTURED_CLONE,
  T,
} from './rpc-format.js';

export { PayloadTooLarge } from './rpc-format.js';
export { decodePayload, type ReadLimits } from './rpc-reader.js';

// Captured when the module loads, before any function's code runs in the same realm.
const ObjectPrototype = Object.prototype;
const DatePrototype = Date.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;
const isView = ArrayBuffer.isView;
const isArrayBuffer = (v: object): v is ArrayBuffer => getPrototypeOf(v) === ArrayBuffer.prototype;
const dateGetTime = DatePrototype.getTime;
const typedArrayTag = Object.getOwnPropertyDescriptor(
  getPrototypeOf(Uint8Array.prototype) as object,
  Symbol.toStringTag,
)?.get as (this: unknown) => string | undefined;
const isWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;
const bufferWrite = Buffer.prototype.write as (
  this: Buffer,
  s: string,
  offset: number,
  encoding: 'utf8' | 'utf16le' | 'latin1',
) => number;
const byteLengthOf = Buffer.byteLength;
const bigintToString = BigInt.prototype.toString;

/** Thrown inside the writer when the value needs a structured clone. */
const NOT_COMPACT = Symbol('not compact');

const INITIAL_SCRATCH = 4096;
/** The writer's scratch buffer, reused for every payload (the frame is copied out of it). */
let scratch = new Uint8Array(INITIAL_SCRATCH);
let view = new DataView(scratch.buffer);
/** The same memory as a Buffer, for Node's UTF-8 writer (several times faster than TextEncoder's). */
let text = Buffer.from(scratch.buffer);
let at = 0;
/** Where the frame being written must end at the latest. */
let limit = 0;
/** Set while a value is being written: a getter that makes a binding call must not clobber it. */
let writing = false;

function tooLarge(): PayloadTooLarge {
  return new PayloadTooLarge(
    `is larger than the ${MAX_FRAME_BYTES / 2 ** 20} MiB one binding call or result may carry; send or ask for less at once, or keep large data in a Bucket`,
  );
}

function setScratch(next: Uint8Array<ArrayBuffer>): void {
  scratch = next;
  view = new DataView(next.buffer);
  text = Buffer.from(next.buffer);
}

function reserve(bytes: number): void {
  if (at + bytes <= scratch.byteLength) return;
  if (at + bytes > limit) throw tooLarge();
  let size = scratch.byteLength * 2;
  while (size < at + bytes) size *= 2;
  const next = new Uint8Array(Math.min(size, limit));
  next.set(scratch.subarray(0, at));
  setScratch(next);
}

function writeString(s: string, tagged: boolean): void {
  const head = tagged ? 5 : 4;
  if (isWellFormed && !isWellFormed.call(s)) {
    // A lone surrogate would not survive UTF-8: the string goes as its UTF-16 code units.
    if (!tagged) throw NOT_COMPACT;
    reserve(head + s.length * 2);
    scratch[at] = T.STRING16;
    const written = bufferWrite.call(text, s, at + head, 'utf16le');
    view.setUint32(at + 1, written, true);
    at += head + written;
    return;
  }
  reserve(head + (s.length > MEASURE_STRING_CHARS ? byteLengthOf(s) : s.length * 3));
  if (tagged) scratch[at] = T.STRING;
  const written = bufferWrite.call(text, s, at + head, 'utf8');
  view.setUint32(at + head - 4, written, true);
  at += head + written;
}

function writeBytes(tag: number, kind: number, bytes: Uint8Array): void {
  const head = kind < 0 ? 5 : 6;
  reserve(head + bytes.byteLength);
  scratch[at] = tag;
  if (kind >= 0) scratch[at + 1] = kind;
  view.setUint32(at + head - 4, bytes.byteLength, true);
  scratch.set(bytes, at + head);
  at += head + bytes.byteLength;
}

function writeValue(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'undefined':
      reserve(1);
      scratch[at++] = T.UNDEFINED;
      return;
    case 'boolean':
      reserve(1);
      scratch[at++] = value ? T.TRUE : T.FALSE;
      return;
    case 'number':
      reserve(9);
      if ((value | 0) === value && !(value === 0 && 1 / value < 0)) {
        scratch[at] = T.INT32;
        view.setInt32(at + 1, value, true);
        at += 5;
      } else {
        scratch[at] = T.FLOAT64;
        view.setFloat64(at + 1, value, true);
        at += 9;
      }
      return;
    case 'string':
      writeString(value, true);
      return;
    case 'bigint': {
      const digits = bigintToString.call(value);
      if (digits.length > MAX_BIGINT_DIGITS) throw NOT_COMPACT;
      reserve(5 + digits.length);
      scratch[at] = T.BIGINT;
      view.setUint32(at + 1, digits.length, true);
      bufferWrite.call(text, digits, at + 5, 'latin1');
      at += 5 + digits.length;
      return;
    }
    case 'object':
      break;
    default:
      // symbol, function: a structured clone fails on it as it always did.
      throw NOT_COMPACT;
  }
  if (value === null) {
    reserve(1);
    scratch[at++] = T.NULL;
    return;
  }
  if (depth >= MAX_DEPTH || isProxy(value)) throw NOT_COMPACT;
  if (isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const kind = typedArrayTag.call(value) ?? 'DataView';
    if (kind === 'Uint8Array') {
      writeBytes(T.BYTES, -1, bytes);
      return;
    }
    const index = BINARY_KINDS.indexOf(kind as (typeof BINARY_KINDS)[number]);
    if (index < 0) throw NOT_COMPACT;
    writeBytes(T.BINARY, index, bytes);
    return;
  }
  if (isArray(value)) {
    const length = value.length;
    if (length > MAX_COMPACT_ARRAY) throw NOT_COMPACT;
    reserve(5);
    scratch[at] = T.ARRAY;
    view.setUint32(at + 1, length, true);
    at += 5;
    for (let i = 0; i < length; i++) {
      // A hole would come back as undefined: a sparse array goes as a structured clone.
      if (!(i in value)) throw NOT_COMPACT;
      writeValue(value[i], depth + 1);
    }
    return;
  }
  const proto = getPrototypeOf(value);
  if (proto === DatePrototype) {
    let time: number;
    try {
      time = dateGetTime.call(value);
    } catch {
      // Date's prototype, but no Date (Object.create(Date.prototype)): a structured clone sends {}.
      throw NOT_COMPACT;
    }
    reserve(9);
    scratch[at] = T.DATE;
    view.setFloat64(at + 1, time, true);
    at += 9;
    return;
  }
  if (isArrayBuffer(value)) {
    writeBytes(T.BINARY, 0, new Uint8Array(value));
    return;
  }
  if (proto !== ObjectPrototype && proto !== null) throw NOT_COMPACT;
  const keys = objectKeys(value);
  reserve(5);
  scratch[at] = T.OBJECT;
  view.setUint32(at + 1, keys.length, true);
  at += 5;
  for (const key of keys) {
    // Up to 3 bytes a character: a key that may be longer than MAX_KEY_BYTES goes as a clone.
    if (key.length * 3 > MAX_KEY_BYTES) throw NOT_COMPACT;
    writeString(key, false);
    writeValue((value as Record<string, unknown>)[key], depth + 1);
  }
}

/**
 * A whole frame (a `headerBytes` header the caller fills, zeroed here, then the payload) carrying
 * `value`. Throws as `v8.serialize` does for a value nothing can send (a function, a symbol), and
 * PayloadTooLarge when the frame would pass MAX_FRAME_BYTES.
 */
export function encodeFrame(headerBytes: number, value: unknown): Uint8Array {
  // Re-entered from a getter of the value being written: that call goes as a structured clone.
  if (!writing) {
    writing = true;
    at = headerBytes;
    limit = headerBytes + MAX_FRAME_BYTES;
    try {
      reserve(1);
      scratch.fill(0, 0, headerBytes);
      scratch[at++] = COMPACT;
      writeValue(value, 0);
      return scratch.slice(0, at);
    } catch (err) {
      if (err !== NOT_COMPACT) throw err;
    } finally {
      writing = false;
      if (scratch.byteLength > KEEP_SCRATCH_BYTES) setScratch(new Uint8Array(INITIAL_SCRATCH));
    }
  }
  const clone = serialize(value);
  if (clone.byteLength + 1 > MAX_FRAME_BYTES) throw tooLarge();
  const out = new Uint8Array(headerBytes + 1 + clone.byteLength);
  out[headerBytes] = STRUCTURED_CLONE;
  out.set(clone, headerBytes + 1);
  return out;
}
