/**
 * `node:buffer`: the realm's own Buffer (an allow-listed global, frozen with the intrinsics). The
 * npm polyfill cannot load in the guest realm: it assigns methods (includes, indexOf…) over the
 * frozen Uint8Array prototype's, which a frozen realm refuses.
 */

/** The Buffer class. */
export const Buffer = globalThis.Buffer;
export const Blob = globalThis.Blob;
export const File = globalThis.File;
export const atob = globalThis.atob;
export const btoa = globalThis.btoa;
export const INSPECT_MAX_BYTES = 50;
export const kMaxLength = 2 ** 32;
export const kStringMaxLength = 2 ** 29 - 24;
export const constants = { MAX_LENGTH: kMaxLength, MAX_STRING_LENGTH: kStringMaxLength };

/** A Buffer outside the pool. */
export function SlowBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

/** Whether `input` is valid UTF-8. */
export function isUtf8(input: ArrayBufferView | ArrayBuffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(input as Uint8Array);
    return true;
  } catch {
    return false;
  }
}

/** Whether `input` holds only ASCII bytes. */
export function isAscii(input: ArrayBufferView | ArrayBuffer): boolean {
  const bytes = ArrayBuffer.isView(input)
    ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
    : new Uint8Array(input);
  return bytes.every((b) => b < 0x80);
}

export default {
  Buffer,
  Blob,
  File,
  atob,
  btoa,
  INSPECT_MAX_BYTES,
  kMaxLength,
  kStringMaxLength,
  constants,
  SlowBuffer,
  isUtf8,
  isAscii,
};
