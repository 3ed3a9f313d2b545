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

/** The most keys one bulk get may ask for, as on Workers. */
const MAX_BULK_KEYS = 100;

/** A bulk get's type: Workers takes only text and json there. */
function bulkType(type: unknown): KvType {
  const t = kvType(type);
  if (t !== 'text' && t !== 'json')
    throw new TypeError(`A get of several keys returns text or json, not "${t}": get them one by one.`);
  return t;
}

/** See the file comment. */
export function keyValueBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof KEY_VALUE_OPS)[number]>(rpc, name);
  const one = async (key: string, type: KvType) => {
    const entry = (await call('get', [String(key)])) as { value: Uint8Array; metadata?: unknown } | null;
    if (!entry) return { value: null, metadata: null };
    return { value: decodeAs(entry.value, type), metadata: entry.metadata ?? null };
  };
  /** Workers' bulk form: a Map of each key (at most 100) to what `pick` takes of its entry. */
  const bulk = async <T>(keys: unknown[], type: unknown, pick: (e: Awaited<ReturnType<typeof one>>) => T) => {
    if (keys.length === 0 || keys.length > MAX_BULK_KEYS)
      throw new TypeError(`A get of several keys takes 1 to ${MAX_BULK_KEYS} keys, not ${keys.length}.`);
    const t = bulkType(type);
    const names = keys.map(String);
    const entries = await Promise.all(names.map((k) => one(k, t)));
    return new Map(names.map((k, i) => [k, pick(entries[i]!)]));
  };
  async function getWithMetadata(key: string | string[], type?: unknown) {
    if (Array.isArray(key)) return bulk(key, type, (e) => e);
    return one(key, kvType(type));
  }
  return Object.freeze({
    async get(key: string | string[], type?: unknown) {
      if (Array.isArray(key)) return bulk(key, type, (e) => e.value);
      return (await one(key, kvType(type))).value;
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
