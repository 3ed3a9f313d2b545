/**
 * The binding calls' payload format (rpc-codec.ts writes it, rpc-reader.ts reads it): the tags of the
 * compact form, the kinds of binary values, and the bounds both ends keep to. rpc-codec.ts says why
 * and how.
 */

/** The first byte of a payload. */
export const COMPACT = 1;
export const STRUCTURED_CLONE = 2;

export const T_UNDEFINED = 0;
export const T_NULL = 1;
export const T_FALSE = 2;
export const T_TRUE = 3;
export const T_INT32 = 4;
export const T_FLOAT64 = 5;
export const T_STRING = 6;
export const T_BYTES = 7;
export const T_ARRAY = 8;
export const T_OBJECT = 9;
export const T_DATE = 10;
export const T_BIGINT = 11;
export const T_STRING16 = 12;
export const T_BINARY = 13;

/** T_BINARY's kinds: what the bytes were (index = kind byte). */
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
/** Strings longer than this are measured before they are written, not reserved at 3 bytes a character. */
export const MEASURE_STRING_CHARS = 4096;

/**
 * A payload larger than its reader or the channel allows: a function may ask for that much, and is
 * told no (ERR_BINDING_TOO_LARGE); it is not a malformed payload.
 */
export class PayloadTooLarge extends Error {}
