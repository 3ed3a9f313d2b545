/**
 * A binding call's failure as the instance receives it (in the `{ ok, error }` of an RPC_RESULT
 * frame, rpc-codec.ts), and the Error the function sees for it.
 */
/** A binding call's failure as it crossed the channel: the code and, for SQL, the SQLSTATE. */
export interface WireError {
  code?: string;
  message: string;
  sqlState?: string;
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
