/**
 * The module a pre-started worker imports and serves once before it is assigned (see prewarm() in
 * instance.ts): a file, like a function's bundle, so the whole file-import path is compiled too.
 */
export default {
  fetch(request: Request): Response {
    return new Response(request.url);
  },
};
