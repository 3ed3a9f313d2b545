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
 * One difference from structured clone: an array's named properties (`Object.assign([1], { x })`)
 * are not sent.
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
import { DefaultDeserializer, deserialize, serialize } from 'node:v8';
import { MAX_FRAME_BYTES } from './channel.js';

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
const T_BIGINT = 11;
const T_STRING16 = 12;
const T_BINARY = 13;

/** T_BINARY's kinds: what the bytes were (index = kind byte). */
const BINARY_KINDS = [
  'ArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;
type TypedArrayConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;
const BINARY_CONSTRUCTORS: (TypedArrayConstructor | undefined)[] = BINARY_KINDS.map((name) =>
  name === 'ArrayBuffer' || name === 'DataView'
    ? undefined
    : (globalThis as unknown as Record<string, TypedArrayConstructor>)[name],
);

/**
 * How deep the compact form nests. The writer sends anything deeper as a structured clone, so a
 * reader that meets more is reading a hostile payload. (The broker refuses arguments deeper than
 * 64 levels with its own error, whichever form they came in.)
 */
const MAX_DEPTH = 128;
/** Arrays longer than this go as a structured clone (which may hold them sparse). */
const MAX_COMPACT_ARRAY = 1 << 24;
/** What each value counts against `maxValues`: objects that carry a buffer weigh more. */
const HEAVY_VALUE = 4;
/** A scratch buffer grown past this is dropped after its frame, so its memory goes back. */
const KEEP_SCRATCH_BYTES = 1 << 20;
/** The most digits a bigint may have in the compact form (larger ones go as a structured clone). */
const MAX_BIGINT_DIGITS = 4096;
/** Strings longer than this are measured before they are written, not reserved at 3 bytes a character. */
const MEASURE_STRING_CHARS = 4096;

// Captured when the module loads, before any function's code runs in the same realm.
const ObjectPrototype = Object.prototype;
const DatePrototype = Date.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const objectKeys = Object.keys;
const isArray = Array.isArray;
const isView = ArrayBuffer.isView;
const isArrayBuffer = (v: object): v is ArrayBuffer => getPrototypeOf(v) === ArrayBuffer.prototype;
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
  encoding: 'utf8' | 'utf16le' | 'latin1',
) => number;
const bufferToString = Buffer.prototype.toString as (
  this: Buffer,
  encoding: 'utf8' | 'utf16le' | 'latin1',
  start: number,
  end: number,
) => string;
const byteLengthOf = Buffer.byteLength;
const bigintToString = BigInt.prototype.toString;
const BigIntOf = BigInt;

/**
 * A payload larger than its reader or the channel allows: a function may ask for that much, and is
 * told no (ERR_BINDING_TOO_LARGE); it is not a malformed payload.
 */
export class PayloadTooLarge extends Error {}

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
    scratch[at] = T_STRING16;
    const written = bufferWrite.call(text, s, at + head, 'utf16le');
    view.setUint32(at + 1, written, true);
    at += head + written;
    return;
  }
  reserve(head + (s.length > MEASURE_STRING_CHARS ? byteLengthOf(s) : s.length * 3));
  if (tagged) scratch[at] = T_STRING;
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
      writeString(value, true);
      return;
    case 'bigint': {
      const digits = bigintToString.call(value);
      if (digits.length > MAX_BIGINT_DIGITS) throw NOT_COMPACT;
      reserve(5 + digits.length);
      scratch[at] = T_BIGINT;
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
    scratch[at++] = T_NULL;
    return;
  }
  if (depth >= MAX_DEPTH || isProxy(value)) throw NOT_COMPACT;
  if (isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const kind = typedArrayTag.call(value) ?? 'DataView';
    if (kind === 'Uint8Array') {
      writeBytes(T_BYTES, -1, bytes);
      return;
    }
    const index = BINARY_KINDS.indexOf(kind as (typeof BINARY_KINDS)[number]);
    if (index < 0) throw NOT_COMPACT;
    writeBytes(T_BINARY, index, bytes);
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
    let time: number;
    try {
      time = dateGetTime.call(value);
    } catch {
      // Date's prototype, but no Date (Object.create(Date.prototype)): a structured clone sends {}.
      throw NOT_COMPACT;
    }
    reserve(9);
    scratch[at] = T_DATE;
    view.setFloat64(at + 1, time, true);
    at += 9;
    return;
  }
  if (isArrayBuffer(value)) {
    writeBytes(T_BINARY, 0, new Uint8Array(value));
    return;
  }
  if (proto !== ObjectPrototype && proto !== null) throw NOT_COMPACT;
  const keys = objectKeys(value);
  reserve(5);
  scratch[at] = T_OBJECT;
  view.setUint32(at + 1, keys.length, true);
  at += 5;
  for (const key of keys) {
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

/** Node's deserializer, but what it reads is copied out of the payload, and bytes are never Node Buffers. */
class PlainDeserializer extends DefaultDeserializer {
  // Node's own hook for typed arrays (not in @types/node). It returns views of the payload.
  _readHostObject(): unknown {
    const read = (DefaultDeserializer.prototype as unknown as { _readHostObject(): unknown })._readHostObject;
    const value = read.call(this);
    if (Buffer.isBuffer(value)) return new Uint8Array(value);
    if (value instanceof DataView)
      return new DataView(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice().buffer);
    return isView(value) ? (value as Uint8Array).slice() : value;
  }
}

/** How a payload may be read (see decodePayload). */
export interface ReadLimits {
  /** Structured-clone bytes come out as plain Uint8Array copies, not Node Buffers (the instance's side). */
  plainBytes?: boolean;
  /** The values a compact payload may make; past it, PayloadTooLarge. */
  maxValues?: number;
  /** The largest structured clone taken; past it, PayloadTooLarge. */
  maxCloneBytes?: number;
}

/** Reads one payload; throws on anything malformed. */
class Reader {
  private offset = 1;
  private readonly bytes: Uint8Array<ArrayBufferLike>;
  private readonly view: DataView;
  private readonly text: Buffer;
  /** Values the payload may still make. */
  private left: number;

  constructor(
    payload: Uint8Array,
    private readonly maxValues: number,
  ) {
    // A plain view: its slice() copies (a Buffer's is a view of the socket's chunk).
    this.bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    this.text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.left = maxValues;
  }

  /** The values made so far (each counted by its weight). */
  get made(): number {
    return this.maxValues - this.left;
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

  private string(encoding: 'utf8' | 'utf16le' | 'latin1'): string {
    const length = this.u32();
    this.need(length);
    const s = bufferToString.call(this.text, encoding, this.offset, this.offset + length);
    this.offset += length;
    return s;
  }

  /** A copy of the next `length` bytes. */
  private copy(length: number): Uint8Array<ArrayBuffer> {
    this.need(length);
    const bytes = this.bytes.slice(this.offset, this.offset + length) as Uint8Array<ArrayBuffer>;
    this.offset += length;
    return bytes;
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
        if (tag === T_FLOAT64) return n;
        this.take(HEAVY_VALUE);
        return new Date(n);
      }
      case T_STRING:
        return this.string('utf8');
      case T_STRING16:
        return this.string('utf16le');
      case T_BIGINT: {
        this.take(HEAVY_VALUE);
        const digits = this.string('latin1');
        if (digits.length > MAX_BIGINT_DIGITS || !/^-?\d+$/.test(digits))
          throw new Error('a bigint that is not one');
        return BigIntOf(digits);
      }
      case T_BYTES: {
        this.take(HEAVY_VALUE);
        return this.copy(this.u32());
      }
      case T_BINARY: {
        this.take(HEAVY_VALUE);
        this.need(1);
        const kind = this.bytes[this.offset++] as number;
        if (kind >= BINARY_KINDS.length) throw new Error(`an unknown binary kind ${kind}`);
        const { buffer } = this.copy(this.u32());
        if (kind === 0) return buffer;
        if (kind === 1) return new DataView(buffer);
        const Ctor = BINARY_CONSTRUCTORS[kind] as TypedArrayConstructor & { BYTES_PER_ELEMENT: number };
        if (buffer.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw new Error('a typed array cut short');
        return new Ctor(buffer);
      }
      case T_ARRAY: {
        const count = this.u32();
        // Each element takes at least one byte: no count can ask for more than the payload holds.
        this.need(count);
        this.take(count);
        const out: unknown[] = [];
        for (let i = 0; i < count; i++) out.push(this.value(depth + 1));
        return out;
      }
      case T_OBJECT: {
        const count = this.u32();
        // Each entry takes at least five bytes (key length, value tag).
        this.need(count * 5);
        this.take(count);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = this.string('utf8');
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
 * The value of a payload written by `encodeFrame` (the payload without the frame header), and how
 * many values it made (a structured clone counts one per byte: each takes at least that). Throws
 * on a malformed payload, and PayloadTooLarge past `limits`.
 */
export function decodePayload(
  payload: Uint8Array,
  limits: ReadLimits = {},
): { value: unknown; values: number } {
  if (payload.byteLength === 0) throw new Error('an empty payload');
  if (payload[0] === COMPACT) {
    const reader = new Reader(payload, limits.maxValues ?? Number.POSITIVE_INFINITY);
    const value = reader.readAll();
    return { value, values: reader.made };
  }
  if (payload[0] !== STRUCTURED_CLONE) throw new Error(`an unknown payload form ${payload[0]}`);
  if (payload.byteLength - 1 > (limits.maxCloneBytes ?? Number.POSITIVE_INFINITY))
    throw new PayloadTooLarge(
      `is a structured clone of more than ${limits.maxCloneBytes} bytes (a Map, a Set, a class instance or a sparse array, as large as that); send plain objects and arrays`,
    );
  const clone = payload.subarray(1);
  const values = clone.byteLength;
  if (!limits.plainBytes) return { value: deserialize(clone), values };
  const d = new PlainDeserializer(Buffer.from(clone.buffer, clone.byteOffset, clone.byteLength));
  d.readHeader();
  return { value: d.readValue(), values };
}
