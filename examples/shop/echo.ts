// Streams the request body back, upper-cased, without buffering it: request and response bodies are streams.
export default {
  fetch(request: Request): Response {
    if (!request.body) return new Response('POST a body to /shop/echo/…\n');
    const upper = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        controller.enqueue(new TextEncoder().encode(new TextDecoder().decode(chunk).toUpperCase()));
      },
    });
    return new Response(request.body.pipeThrough(upper), { headers: { 'content-type': 'text/plain' } });
  },
};
