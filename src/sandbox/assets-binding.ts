/**
 * The static-assets bindings a function with spec.assets finds in env: `env.ASSETS` (its name is
 * spec.assets.binding), whose fetch(request) answers from the files deployed with the function as
 * Workers' assets binding does, and Workers Sites' `env.__STATIC_CONTENT` (a KV-shaped reader Hono's
 * serveStatic uses). Both ask the supervisor, which serves the files (src/gateway/assets.ts).
 */
import type { Rpc } from './bindings/common.js';

/** What the supervisor answers a fetch with. */
interface AssetResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
}

/** The bindings, by env name. */
export function assetBindings(rpc: Rpc, binding: string | undefined): Record<string, object> {
  const out: Record<string, object> = {
    __STATIC_CONTENT: Object.freeze({
      /** KV's get(key, type): the file's bytes as text, JSON, an ArrayBuffer or a stream; null when absent. */
      async get(key: string, options?: string | { type?: string }) {
        const bytes = (await rpc('__STATIC_CONTENT', 'get', [String(key)])) as Uint8Array<ArrayBuffer> | null;
        if (bytes === null) return null;
        const type = typeof options === 'string' ? options : (options?.type ?? 'text');
        if (type === 'arrayBuffer') return bytes.slice().buffer;
        if (type === 'stream') return new Response(bytes).body;
        const text = new TextDecoder().decode(bytes);
        return type === 'json' ? JSON.parse(text) : text;
      },
    }),
  };
  if (binding)
    out[binding] = Object.freeze({
      /** The asset a request names, as the gateway would serve it, with the not-found handling's answer. */
      async fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
        const request = new Request(input, init);
        const headers: Record<string, string> = {};
        request.headers.forEach((v, k) => {
          headers[k] = v;
        });
        const r = (await rpc(binding, 'fetch', [request.method, request.url, headers])) as AssetResponse;
        return new Response(r.body, { status: r.status, headers: r.headers });
      },
    });
  return out;
}
