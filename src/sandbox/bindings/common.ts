/**
 * What every tenant-side binding object shares: the call to the supervisor, and reading the bodies
 * a function may pass into bytes.
 */

/** Sends one binding call to the supervisor and resolves with its result. */
export type Rpc = (binding: string, op: string, args: unknown[]) => Promise<unknown>;

/** The calls of one binding, limited to its kind's operation names (`Ops`), so none can be misspelt. */
export function caller<Op extends string>(rpc: Rpc, binding: string) {
  return (op: Op, args: unknown[]): Promise<unknown> => rpc(binding, op, args);
}

/** Shared encoders: UTF-8 in and out. */
export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Reads any body a function may pass (string, buffer, view, stream, Blob) into bytes. */
export async function toBytes(value: unknown): Promise<Uint8Array> {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ReadableStream) return new Uint8Array(await new Response(value).arrayBuffer());
  if (value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (value === null || value === undefined) return new Uint8Array();
  throw new TypeError('The value must be a string, ArrayBuffer, ArrayBufferView, ReadableStream or Blob.');
}
