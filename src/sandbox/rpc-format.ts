/**
 * The binding calls' payload format (rpc-codec.ts writes it, rpc-reader.ts reads it): the tags of the
 * compact form, the kinds of binary values, and the bounds both ends keep to. rpc-codec.ts says why
 * and how.
 */

/** The first byte of a payload. */
export const COMPACT = 1;
export const STRUCTURED_CLONE = 2;

/** The tag byte before each value of the compact form, and what follows it. */
export const T = {
  UNDEFINED: 0,
  NULL: 1,
  FALSE: 2,
  TRUE: 3,
  INT32: 4, // little-endian
  FLOAT64: 5, // little-endian
  STRING: 6, // u32 byte length, UTF-8
  BYTES: 7, // u32 length, the bytes of a Uint8Array or Buffer
  ARRAY: 8, // u32 count, then the values
  OBJECT: 9, // u32 count, then key (u32 length, UTF-8) and value for each
  DATE: 10, // float64 time
  BIGINT: 11, // u32 length, decimal digits
  STRING16: 12, // u32 byte length, UTF-16LE code units (a string with a lone surrogate)
  BINARY: 13, // kind byte (BINARY_KINDS), u32 byte length, the bytes
} as const;

/** T.BINARY's kinds: what the bytes were (index = kind byte). */
export const BINARY_KINDS = [
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
export type TypedArrayConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;
export const BINARY_CONSTRUCTORS: (TypedArrayConstructor | undefined)[] = BINARY_KINDS.map((name) =>
  name === 'ArrayBuffer' || name === 'DataView'
    ? undefined
    : (globalThis as unknown as Record<string, TypedArrayConstructor>)[name],
);

/**
 * How deep the compact form nests. The writer sends anything deeper as a structured clone, so a
 * reader that meets more is reading a hostile payload. (The broker refuses arguments deeper than
 * 64 levels with its own error, whichever form they came in.)
 */
export const MAX_DEPTH = 128;
/** Arrays longer than this go as a structured clone (which may hold them sparse). */
export const MAX_COMPACT_ARRAY = 1 << 24;
/** What each value counts against `maxValues`: objects that carry a buffer weigh more. */
export const HEAVY_VALUE = 4;
/** A scratch buffer grown past this is dropped after its frame, so its memory goes back. */
export const KEEP_SCRATCH_BYTES = 1 << 20;
/** The most digits a bigint may have in the compact form (larger ones go as a structured clone). */
export const MAX_BIGINT_DIGITS = 4096;
/**
 * The longest object key (UTF-8 bytes) in the compact form; an object with a longer one goes as a
 * structured clone (at most 1 MiB from a sandbox). V8 hashes a string over 16,383 characters by its
 * length alone, so thousands of long keys of one length would make the reader's property writes
 * quadratic (a red-team finding: 1,200 keys of 16,400 bytes took a second).
 */
export const MAX_KEY_BYTES = 4096;
/** Strings longer than this are measured before they are written, not reserved at 3 bytes a character. */
export const MEASURE_STRING_CHARS = 4096;

/**
 * A payload larger than its reader or the channel allows: a function may ask for that much, and is
 * told no (ERR_BINDING_TOO_LARGE); it is not a malformed payload.
 */
export class PayloadTooLarge extends Error {}
