/**
 * How the gateway answers when the platform, not the function, decides the response: a JSON body
 * `{ "error": { code, message, requestId } }` with the status the error code maps to.
 */
import type { ServerResponse } from 'node:http';
import { type KylixError, toKylixError } from '../errors.js';

/** The header every gateway response carries. */
export const REQUEST_ID = 'kylix-request-id';

/** The platform error each response was answered with, for metrics and traces (weak: gone with it). */
const answeredWith = new WeakMap<ServerResponse, string>();

/** The code of the platform error a response carries, if the platform (not the function) answered. */
export function platformErrorCode(res: ServerResponse): string | undefined {
  return answeredWith.get(res);
}

/** Records the platform error a response was answered with when it was written without sendError (a refusal). */
export function markPlatformError(res: ServerResponse, code: string): void {
  answeredWith.set(res, code);
}

/** Writes a platform error response, unless the response has already started. */
export function sendError(
  res: ServerResponse,
  err: KylixError | unknown,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): void {
  const e = toKylixError(err);
  answeredWith.set(res, e.code);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: e.code, message: e.message, requestId } });
  res.writeHead(e.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [REQUEST_ID]: requestId,
    ...extraHeaders,
  });
  res.end(body);
}
