/** env.X for a KeyValue binding: Workers KV's KVNamespace. */
import { caller, decoder, type Rpc, toBytes } from './common.js';

/** The operations this object calls: the same as the KeyValue kind's (a unit test checks it). */
export const KEY_VALUE_OPS = ['get', 'put', 'delete', 'list'] as const;

type KvType = 'text' | 'json' | 'arrayBuffer' | 'stream';

function decodeAs(bytes: Uint8Array, type: KvType): unknown {
  if (type === 'json') return JSON.parse(decoder.decode(bytes));
  if (type === 'arrayBuffer')
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (type === 'stream') return new Response(bytes as Uint8Array<ArrayBuffer>).body;
  return decoder.decode(bytes);
}

function kvType(arg: unknown): KvType {
  const t = typeof arg === 'string' ? arg : ((arg as { type?: string } | undefined)?.type ?? 'text');
  if (!['text', 'json', 'arrayBuffer', 'stream'].includes(t))
    throw new TypeError(`Unknown type "${t}": use text, json, arrayBuffer or stream.`);
  return t as KvType;
}

/** See the file comment. */
export function keyValueBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof KEY_VALUE_OPS)[number]>(rpc, name);
  const getWithMetadata = async (key: string, type?: unknown) => {
    const entry = (await call('get', [String(key)])) as { value: Uint8Array; metadata?: unknown } | null;
    if (!entry) return { value: null, metadata: null };
    return { value: decodeAs(entry.value, kvType(type)), metadata: entry.metadata ?? null };
  };
  return Object.freeze({
    async get(key: string, type?: unknown) {
      return (await getWithMetadata(key, type)).value;
    },
    getWithMetadata,
    async put(
      key: string,
      value: unknown,
      options: { expiration?: number; expirationTtl?: number; metadata?: unknown } = {},
    ) {
      const expiration =
        options.expirationTtl !== undefined
          ? Math.floor(Date.now() / 1000) + options.expirationTtl
          : options.expiration;
      await call('put', [
        String(key),
        await toBytes(value),
        {
          ...(expiration !== undefined ? { expiration } : {}),
          ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
        },
      ]);
    },
    async delete(key: string) {
      await call('delete', [String(key)]);
    },
    async list(options: { prefix?: string; limit?: number; cursor?: string } = {}) {
      return call('list', [{ ...options }]);
    },
  });
}
