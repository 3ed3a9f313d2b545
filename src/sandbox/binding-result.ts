/**
 * A binding call's answer as the instance receives it (v8-serialized `{ ok, value | error }` in an
 * RPC_RESULT frame): values come out with plain Uint8Arrays, never Node Buffers, and failures
 * become the Error the function sees.
 */
import { Buffer } from 'node:buffer';
import { DefaultDeserializer } from 'node:v8';

export /** A binding call's failure as it crossed the channel: the code and, for SQL, the SQLSTATE. */
interface WireError {
  code?: string;
  message: string;
  sqlState?: string;
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

/** A binding call's result: function code never holds a Node Buffer. */
export function plainDeserialize(payload: Uint8Array): unknown {
  const d = new PlainDeserializer(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  d.readHeader();
  return d.readValue();
}

/** The Error a function sees for a failed binding call: message, `code` and, for SQL, `sqlState`. */
export function bindingError(wire: WireError | undefined): Error {
  const err = new Error(wire?.message ?? 'the binding call failed') as Error & {
    code?: string;
    sqlState?: string;
  };
  if (wire?.code) err.code = wire.code;
  if (wire?.sqlState) err.sqlState = wire.sqlState;
  return err;
}
