/**
 * Between Node's HTTP objects and Web-standard ones, for the guest's fetch() (the answers of the
 * egress proxy): body chunks become plain Uint8Arrays, so no Node object is reachable from them.
 */
import type { IncomingMessage } from 'node:http';

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
