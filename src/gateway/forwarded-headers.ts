/**
 * The headers that cross the gateway: the request's as the function gets them (the routed Host,
 * no hop-by-hop headers) and the response's as the client gets them (no hop-by-hop headers, no
 * length the function claims for a body whose framing is the gateway's, the request id added).
 */
import type { ResponseHead } from '../sandbox/channel.js';
import { REQUEST_ID } from './errors.js';

/** Headers that describe one hop's connection, not the message: never forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

/**
 * The request's headers as a flat list, less the hop-by-hop ones, with the one Host the gateway
 * routed by (the untagged host of a `tag--host` request), so the function sees what was routed.
 */
export function forwardedHeaders(raw: string[], host: string): string[] {
  const out: string[] = ['host', host];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!HOP_BY_HOP.has(name) && name !== 'host') out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/** The response's headers for the client: hop-by-hop ones dropped, the request id added. */
export function responseHeaders(
  head: ResponseHead,
  requestId: string,
  inlineLength: number | undefined,
  keepLength: boolean,
): string[] {
  const out: string[] = [];
  const h = head.h;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const name = String(h[i]).toLowerCase();
    if (HOP_BY_HOP.has(name) || name === REQUEST_ID) continue;
    // The body's length is the gateway's to state: exactly, for an inline body; by chunked framing,
    // for a streamed one. A function's own claim could frame bytes of its body as a second response
    // on the client's connection. (A HEAD answer keeps it: it describes the body GET would send.)
    if (name === 'content-length' && !keepLength) continue;
    out.push(name, String(h[i + 1]));
  }
  if (inlineLength !== undefined) out.push('content-length', String(inlineLength));
  out.push(REQUEST_ID, requestId);
  return out;
}
