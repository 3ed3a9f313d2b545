/**
 * The payload of binding calls and their results (RPC and RPC_RESULT frames), shared by both ends.
 *
 * Node's structured clone (`v8.serialize`) costs 4–8 µs per value on each side, four times per
 * binding call: a fifth of the call's CPU, measured. Almost every call and result is made of
 * strings, numbers, booleans, null, bytes, arrays, plain objects and dates, so those go in a compact
 * form written and read by hand; anything else (a Map, a BigInt, a typed array other than bytes, a
 * sparse array, an object with a class…) sends the whole value through `v8.serialize`, as before.
 * The first byte says which.
 *
 * Compact form, each value a tag byte and its data (numbers little-endian, lengths u32):
 * undefined, null, false, true; int32; float64; string (UTF-8 bytes); bytes (a Uint8Array or a
 * Buffer, read back as a plain Uint8Array); array (count, values); object (count, then key string
 * and value for each own enumerable string key); date (float64 time).
 *
 * The supervisor reads what a sandbox process sends, so the reader trusts nothing: every length is
 * checked against the bytes left (so a count cannot allocate more than the frame holds), nesting is
 * bounded, the value must end exactly at the end of the payload, and keys are defined, never
 * assigned (a key "__proto__" is an own property, as structured clone makes it). What the value
 * holds is then checked as before (the broker: call-budget.ts, the kind's argument schema).
 */
import { Buffer } from 'node:buffer';
import { isProxy } from 'node:util/types';
import { DefaultDeserializer, deserialize, serialize } from 'node:v8';

/** The first byte of a payload. */
const COMPACT = 1;
const STRUCTURED_CLONE = 2;

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT32 = 4;
const T_FLOAT64 = 5;
const T_STRING = 6;
const T_BYTES = 7;
const T_ARRAY = 8;
const T_OBJECT = 9;
const T_DATE = 10;

/**
 * How deep the compact form nests. The writer sends anything deeper as a structured clone, so a
 * reader that meets more is reading a hostile payload. (The broker refuses arguments deeper than
 * 64 levels with its own error, whichever form they came in.)
 */
const MAX_DEPTH = 128;
/** Arrays longer than this go as a structured clone (which may hold them sparse). */
const MAX_COMPACT_ARRAY = 1 << 20;

// Captured when the module loads, before any function's code runs in the same realm.
const ObjectPrototype = Object.prototype;
const DatePrototype = Date.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;
const isView = ArrayBuffer.isView;
const defineProperty = Object.defineProperty;
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
  encoding: 'utf8',
) => number;
const bufferToString = Buffer.prototype.toString as (
  this: Buffer,
  encoding: 'utf8',
  start: number,
  end: number,
) => string;

/** Thrown inside the writer when the value needs a structured clone. */
const NOT_COMPACT = Symbol('not compact');

/** The writer's scratch buffer, reused for every payload (the frame is copied out of it). */
let scratch = new Uint8Array(4096);
let view = new DataView(scratch.buffer);
/** The same memory as a Buffer, for Node's UTF-8 writer (several times faster than TextEncoder's). */
let text = Buffer.from(scratch.buffer);
let at = 0;
/** Set while a value is being written: a getter that makes a binding call must not clobber it. */
let writing = false;

function reserve(bytes: number): void {
  if (at + bytes <= scratch.byteLength) return;
  let size = scratch.byteLength * 2;
  while (size < at + bytes) size *= 2;
  const next = new Uint8Array(size);
  next.set(scratch.subarray(0, at));
  scratch = next;
  view = new DataView(next.buffer);
  text = Buffer.from(next.buffer);
}

function writeString(s: string): void {
  // Lone surrogates would not survive UTF-8: such a string goes as a structured clone.
  if (isWellFormed && !isWellFormed.call(s)) throw NOT_COMPACT;
  reserve(5 + s.length * 3);
  scratch[at] = T_STRING;
  const written = bufferWrite.call(text, s, at + 5, 'utf8');
  view.setUint32(at + 1, written, true);
  at += 5 + written;
}

function writeKey(s: string): void {
  if (isWellFormed && !isWellFormed.call(s)) throw NOT_COMPACT;
  reserve(4 + s.length * 3);
  const written = bufferWrite.call(text, s, at + 4, 'utf8');
  view.setUint32(at, written, true);
  at += 4 + written;
}

function writeValue(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'undefined':
      reserve(1);
      scratch[at++] = T_UNDEFINED;
      return;
    case 'boolean':
      reserve(1);
      scratch[at++] = value ? T_TRUE : T_FALSE;
      return;
    case 'number':
      reserve(9);
      if ((value | 0) === value && !(value === 0 && 1 / value < 0)) {
        scratch[at] = T_INT32;
        view.setInt32(at + 1, value, true);
        at += 5;
      } else {
        scratch[at] = T_FLOAT64;
        view.setFloat64(at + 1, value, true);
        at += 9;
      }
      return;
    case 'string':
      writeString(value);
      return;
    case 'object':
      break;
    default:
      // bigint, symbol, function: a structured clone sends it or fails as it always did.
      throw NOT_COMPACT;
  }
  if (value === null) {
    reserve(1);
    scratch[at++] = T_NULL;
    return;
  }
  if (depth >= MAX_DEPTH || isProxy(value)) throw NOT_COMPACT;
  if (isView(value)) {
    if (typedArrayTag.call(value) !== 'Uint8Array') throw NOT_COMPACT;
    const bytes = value as Uint8Array;
    reserve(5 + bytes.byteLength);
    scratch[at] = T_BYTES;
    view.setUint32(at + 1, bytes.byteLength, true);
    scratch.set(bytes, at + 5);
    at += 5 + bytes.byteLength;
    return;
  }
  if (isArray(value)) {
    const length = value.length;
    if (length > MAX_COMPACT_ARRAY) throw NOT_COMPACT;
    reserve(5);
    scratch[at] = T_ARRAY;
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
    reserve(9);
    scratch[at] = T_DATE;
    view.setFloat64(at + 1, dateGetTime.call(value), true);
    at += 9;
    return;
  }
  if (proto !== ObjectPrototype && proto !== null) throw NOT_COMPACT;
  const keys = objectKeys(value);
  reserve(5);
  scratch[at] = T_OBJECT;
  view.setUint32(at + 1, keys.length, true);
  at += 5;
  for (const key of keys) {
    writeKey(key);
    writeValue((value as Record<string, unknown>)[key], depth + 1);
  }
}

/**
 * A whole frame (a `headerBytes` header the caller fills, then the payload) carrying `value`.
 * Throws as `v8.serialize` does for a value nothing can send (a function, a symbol).
 */
export function encodeFrame(headerBytes: number, value: unknown): Uint8Array {
  // Re-entered from a getter of the value being written: that call goes as a structured clone.
  if (!writing) {
    writing = true;
    at = headerBytes;
    reserve(1);
    scratch[at++] = COMPACT;
    try {
      writeValue(value, 0);
      return scratch.slice(0, at);
    } catch (err) {
      if (err !== NOT_COMPACT) throw err;
    } finally {
      writing = false;
    }
  }
  const clone = serialize(value);
  const out = new Uint8Array(headerBytes + 1 + clone.byteLength);
  out[headerBytes] = STRUCTURED_CLONE;
  out.set(clone, headerBytes + 1);
  return out;
}

/** Node's deserializer, but bytes come out as plain Uint8Arrays, never Node Buffers. */
class PlainDeserializer extends DefaultDeserializer {
  // Node's own hook for typed arrays (not in @types/node).
  _readHostObject(): unknown {
    const read = (DefaultDeserializer.prototype as unknown as { _readHostObject(): unknown })._readHostObject;
    const value = read.call(this);
    return Buffer.isBuffer(value) ? new Uint8Array(value) : value;
  }
}

/**
 * A payload that holds more values than its reader allows: refused before they are made, since a
 * byte each on the wire is eight or more in memory. Not a malformed payload: a function may ask for
 * that much, and is told no.
 */
export class PayloadTooLarge extends Error {}

/** Reads one payload; throws on anything malformed. */
class Reader {
  private offset = 1;
  private readonly view: DataView;
  private readonly text: Buffer;
  /** Values (array elements, object entries) the payload may still hold. */
  private left: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly maxValues: number,
  ) {
    this.left = maxValues;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  readAll(): unknown {
    const value = this.value(0);
    if (this.offset !== this.bytes.byteLength) throw new Error('bytes after the value');
    return value;
  }

  /** Takes `count` values from the budget before they are made. */
  private take(count: number): void {
    this.left -= count;
    if (this.left < 0)
      throw new PayloadTooLarge(
        `holds more than ${this.maxValues} values; send fewer, or store large data in a Bucket and pass its key`,
      );
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.bytes.byteLength) throw new Error('a value longer than its payload');
  }

  private u32(): number {
    this.need(4);
    const n = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return n;
  }

  private string(): string {
    const length = this.u32();
    this.need(length);
    const s = bufferToString.call(this.text, 'utf8', this.offset, this.offset + length);
    this.offset += length;
    return s;
  }

  private value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new Error('a value nested too deep');
    this.need(1);
    const tag = this.bytes[this.offset++];
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT32: {
        this.need(4);
        const n = this.view.getInt32(this.offset, true);
        this.offset += 4;
        return n;
      }
      case T_FLOAT64:
      case T_DATE: {
        this.need(8);
        const n = this.view.getFloat64(this.offset, true);
        this.offset += 8;
        return tag === T_DATE ? new Date(n) : n;
      }
      case T_STRING:
        return this.string();
      case T_BYTES: {
        const length = this.u32();
        this.need(length);
        // A copy: what the reader keeps must not hold on to the socket's chunk.
        const bytes = this.bytes.slice(this.offset, this.offset + length);
        this.offset += length;
        return bytes;
      }
      case T_ARRAY: {
        const count = this.u32();
        // Each element takes at least one byte: no count can ask for more than the payload holds.
        this.need(count);
        this.take(count);
        const out = new Array<unknown>(count);
        for (let i = 0; i < count; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case T_OBJECT: {
        const count = this.u32();
        // Each entry takes at least five bytes (key length, value tag).
        this.need(count * 5);
        this.take(count);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = this.string();
          const value = this.value(depth + 1);
          if (key === '__proto__')
            defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
          else out[key] = value;
        }
        return out;
      }
      default:
        throw new Error(`an unknown value tag ${tag}`);
    }
  }
}

/**
 * The value of a payload written by `encodeFrame` (the payload without the frame header). With
 * `plainBytes`, bytes in a structured clone come out as plain Uint8Arrays rather than Node Buffers
 * (the compact form always gives plain Uint8Arrays). Throws on a malformed payload, and
 * PayloadTooLarge when a compact one holds more than `maxValues` values.
 */
export function decodePayload(payload: Uint8Array, plainBytes = false, maxValues = Infinity): unknown {
  if (payload.byteLength === 0) throw new Error('an empty payload');
  if (payload[0] === COMPACT) return new Reader(payload, maxValues).readAll();
  if (payload[0] !== STRUCTURED_CLONE) throw new Error(`an unknown payload form ${payload[0]}`);
  const clone = payload.subarray(1);
  if (!plainBytes) return deserialize(clone);
  const d = new PlainDeserializer(Buffer.from(clone.buffer, clone.byteOffset, clone.byteLength));
  d.readHeader();
  return d.readValue();
}
