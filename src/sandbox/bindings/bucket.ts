/** env.X for a Bucket binding: R2's R2Bucket. */
import { caller, decoder, type Rpc, toBytes } from './common.js';

/** The operations this object calls: the same as the Bucket kind's (a unit test checks it). */
export const BUCKET_OPS = ['put', 'get', 'head', 'delete', 'list'] as const;

interface StoredObject {
  key: string;
  size: number;
  etag: string;
  uploaded: string;
  httpMetadata: Record<string, string>;
  customMetadata: Record<string, string>;
}

function r2Object(o: StoredObject) {
  return { ...o, httpEtag: `"${o.etag}"`, uploaded: new Date(o.uploaded), version: o.etag };
}

/** See the file comment. */
export function bucketBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof BUCKET_OPS)[number]>(rpc, name);
  return Object.freeze({
    async put(
      key: string,
      value: unknown,
      options: { httpMetadata?: Record<string, string>; customMetadata?: Record<string, string> } = {},
    ) {
      return r2Object(
        (await call('put', [String(key), await toBytes(value), { ...options }])) as StoredObject,
      );
    },
    async get(
      key: string,
      options: { range?: { offset: number; length?: number } | { suffix: number } } = {},
    ) {
      const got = (await call('get', [String(key), { ...options }])) as {
        object: StoredObject;
        body: Uint8Array;
        range?: { offset: number; length: number };
      } | null;
      if (!got) return null;
      const bytes = got.body;
      return {
        ...r2Object(got.object),
        range: got.range,
        get body() {
          return new Response(bytes as Uint8Array<ArrayBuffer>).body;
        },
        bodyUsed: false,
        arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
        text: async () => decoder.decode(bytes),
        json: async () => JSON.parse(decoder.decode(bytes)),
        blob: async () => new Blob([bytes as Uint8Array<ArrayBuffer>]),
      };
    },
    async head(key: string) {
      const o = (await call('head', [String(key)])) as StoredObject | null;
      return o ? r2Object(o) : null;
    },
    async delete(keys: string | string[]) {
      await call('delete', [keys]);
    },
    async list(options: { prefix?: string; delimiter?: string; cursor?: string; limit?: number } = {}) {
      const page = (await call('list', [{ ...options }])) as {
        objects: StoredObject[];
        delimitedPrefixes: string[];
        truncated: boolean;
        cursor?: string;
      };
      return { ...page, objects: page.objects.map(r2Object) };
    },
  });
}
