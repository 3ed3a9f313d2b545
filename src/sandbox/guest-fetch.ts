/**
 * fetch() for functions: a sandbox has no network, so every request goes to the supervisor's egress
 * proxy over a Unix socket, naming its target in a header. The proxy decides (allow-list, address
 * checks) and connects; refusals surface as fetch's usual TypeError("fetch failed") with the reason
 * as its cause. Redirects are followed here, so each hop is checked again.
 */
import { request as httpRequest } from 'node:http';
import { headersOf, webStreamOf } from './http-bridge.js';
import { EGRESS_ERROR_HEADER, EGRESS_URL_HEADER } from './protocol.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** Sends one request through the proxy (no redirect handling). */
function send(socketPath: string, request: Request, onRefused: (reason: string) => void): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (request.signal.aborted) return reject(request.signal.reason);
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => {
      headers[k] = v;
    });
    headers[EGRESS_URL_HEADER] = request.url;
    const out = httpRequest({ socketPath, method: request.method, path: '/', headers });
    const onAbort = () => {
      out.destroy();
      reject(request.signal.reason);
    };
    request.signal.addEventListener('abort', onAbort, { once: true });
    out.on('response', (inc) => {
      const refused = inc.headers[EGRESS_ERROR_HEADER];
      if (typeof refused === 'string') {
        inc.resume();
        const reason = decodeURIComponent(refused);
        onRefused(reason);
        return reject(new TypeError('fetch failed', { cause: new Error(`egress refused: ${reason}`) }));
      }
      const status = inc.statusCode ?? 502;
      const body = NULL_BODY.has(status) || request.method === 'HEAD' ? null : webStreamOf(inc);
      if (!body) inc.resume();
      const response = new Response(body, {
        status,
        statusText: inc.statusMessage,
        headers: headersOf(inc.rawHeaders, (n) => HOP_BY_HOP.has(n)),
      });
      Object.defineProperty(response, 'url', { value: request.url });
      resolve(response);
    });
    out.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
    if (!request.body) return void out.end();
    const reader = request.body.getReader();
    const pump = async (): Promise<void> => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return void out.end();
        if (!out.write(value)) await new Promise((r) => out.once('drain', r));
      }
    };
    pump().catch((err) => out.destroy(err as Error));
  });
}

/** A fetch() bound to an egress proxy socket. */
export function guestFetch(socketPath: string, onRefused: (reason: string) => void): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    let request = new Request(input, init);
    for (let hop = 0; hop <= 20; hop++) {
      const response = await send(socketPath, request, onRefused);
      const location = response.headers.get('location');
      if (!REDIRECTS.has(response.status) || !location || request.redirect === 'manual') return response;
      if (request.redirect === 'error') throw new TypeError('fetch failed', { cause: new Error('redirect') });
      await response.body?.cancel();
      const next = new URL(location, request.url);
      const toGet =
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && request.method === 'POST');
      if (!toGet && request.body) return response;
      request = new Request(next, {
        method: toGet ? 'GET' : request.method,
        headers: request.headers,
        signal: request.signal,
        redirect: request.redirect,
      });
    }
    throw new TypeError('fetch failed', { cause: new Error('too many redirects') });
  };
}
