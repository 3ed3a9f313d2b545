/**
 * Reads the binding calls' payloads (the format is in rpc-format.ts; rpc-codec.ts says why and how).
 * The supervisor reads what a sandbox process sends with it, so it trusts nothing: see rpc-codec.ts.
 */
import { Buffer } from 'node:buffer';
import { DefaultDeserializer, deserialize } from 'node:v8';
import {
  BINARY_CONSTRUCTORS,
  BINARY_KINDS,
  COMPACT,
  HEAVY_VALUE,
  MAX_BIGINT_DIGITS,
  MAX_DEPTH,
  MAX_KEY_BYTES,
  PayloadTooLarge,
  STRUCTURED_CLONE,
  T,
  type TypedArrayConstructor,
} from './rpc-format.js';

// Captured when the module loads, before any function's code runs in the same realm.
const isView = ArrayBuffer.isView;
const defineProperty = Object.defineProperty;
const bufferToString = Buffer.prototype.toString as (
  this: Buffer,
  encoding: 'utf8' | 'utf16le' | 'latin1',
  start: number,
  end: number,
) => string;
const BigIntOf = BigInt;

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

  private string(encoding: 'utf8' | 'utf16le' | 'latin1', maxBytes = Number.POSITIVE_INFINITY): string {
    const length = this.u32();
    if (length > maxBytes) throw new Error(`a key of ${length} bytes (at most ${maxBytes})`);
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
      case T.UNDEFINED:
        return undefined;
      case T.NULL:
        return null;
      case T.FALSE:
        return false;
      case T.TRUE:
        return true;
      case T.INT32: {
        this.need(4);
        const n = this.view.getInt32(this.offset, true);
        this.offset += 4;
        return n;
      }
      case T.FLOAT64:
      case T.DATE: {
        this.need(8);
        const n = this.view.getFloat64(this.offset, true);
        this.offset += 8;
        if (tag === T.FLOAT64) return n;
        this.take(HEAVY_VALUE);
        return new Date(n);
      }
      case T.STRING:
        return this.string('utf8');
      case T.STRING16:
        return this.string('utf16le');
      case T.BIGINT: {
        this.take(HEAVY_VALUE);
        const digits = this.string('latin1');
        if (digits.length > MAX_BIGINT_DIGITS || !/^-?\d+$/.test(digits))
          throw new Error('a bigint that is not one');
        return BigIntOf(digits);
      }
      case T.BYTES: {
        this.take(HEAVY_VALUE);
        return this.copy(this.u32());
      }
      case T.BINARY: {
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
      case T.ARRAY: {
        const count = this.u32();
        // Each element takes at least one byte: no count can ask for more than the payload holds.
        this.need(count);
        this.take(count);
        const out: unknown[] = [];
        for (let i = 0; i < count; i++) out.push(this.value(depth + 1));
        return out;
      }
      case T.OBJECT: {
        const count = this.u32();
        // Each entry takes at least five bytes (key length, value tag).
        this.need(count * 5);
        this.take(count);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = this.string('utf8', MAX_KEY_BYTES);
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
