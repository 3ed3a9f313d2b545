/**
 * Between Node's HTTP objects and the Web-standard Request and Response a function sees. The function
 * gets a real Request whose body chunks are plain Uint8Arrays (no Node object is reachable from it),
 * and whose signal aborts when the client goes away; its Response is streamed back with backpressure,
 * so a slow reader holds the function's stream rather than filling memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { lightRequest, simpleBodyOf } from './web-objects.js';

/** A web stream over a Node readable, copying each chunk into a plain Uint8Array. */
export function webStreamOf(source: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      source.on('data', (chunk: Uint8Array) => {
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 0) <= 0) source.pause();
      });
      source.on('end', () => controller.close());
      source.on('error', (err) => controller.error(err));
      source.on('aborted', () =>
        controller.error(new DOMException('The client disconnected.', 'AbortError')),
      );
    },
    pull() {
      source.resume();
    },
    cancel() {
      source.destroy();
    },
  });
}

/** Headers from Node's raw header list (which keeps repeated headers apart). */
export function headersOf(raw: string[], skip?: (name: string) => boolean): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.startsWith(':') || skip?.(name.toLowerCase())) continue;
    try {
      headers.append(name, raw[i + 1] ?? '');
    } catch {}
  }
  return headers;
}

/** The Request a function receives for an incoming HTTP request. */
export function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  return lightRequest(req, signal, () => webStreamOf(req));
}

/** Writes a Response to Node's response object; resolves when done or the client is gone. */
export async function writeResponse(res: ServerResponse, response: Response, head: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  // Fast path: a body made from a string or bytes is written as it is, with its length.
  const simple = simpleBodyOf(response);
  if (simple !== undefined) {
    headers['content-length'] ??= String(
      typeof simple === 'string' ? Buffer.byteLength(simple) : simple.byteLength,
    );
    res.writeHead(response.status, response.statusText || undefined, headers);
    res.end(head ? undefined : simple);
    return;
  }
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!response.body || head) {
    res.end();
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  const reader = response.body.getReader();
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), closed.then(() => undefined)]);
      if (!next) {
        await reader
          .cancel(new DOMException('The client disconnected.', 'AbortError'))
          .catch(() => undefined);
        return;
      }
      if (next.done) break;
      if (!res.write(next.value)) {
        const drained = await Promise.race([
          new Promise<boolean>((resolve) => res.once('drain', () => resolve(true))),
          closed.then(() => false),
        ]);
        if (!drained) {
          await reader
            .cancel(new DOMException('The client disconnected.', 'AbortError'))
            .catch(() => undefined);
          return;
        }
      }
    }
    res.end();
  } catch (err) {
    res.destroy(err as Error);
  }
}
