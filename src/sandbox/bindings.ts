/**
 * The binding objects a function finds in env, shaped like Cloudflare's so Workers code ports:
 * KV namespaces, R2-style buckets, queue producers, and a SQL database. Every call becomes one
 * request to the supervisor (`rpc`), which checks it against the manifest before any backend runs.
 */

/** Sends one binding call to the supervisor and resolves with its result. */
export type Rpc = (binding: string, op: string, args: unknown[]) => Promise<unknown>;

/** How a binding is declared in the manifest (the sandbox only needs the kind). */
export type BindingKind = 'keyValue' | 'database' | 'queue' | 'bucket';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads any body a function may pass (string, buffer, view, stream, Blob) into bytes. */
export async function toBytes(value: unknown): Promise<Uint8Array> {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ReadableStream) return new Uint8Array(await new Response(value).arrayBuffer());
  if (value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (value === null || value === undefined) return new Uint8Array();
  throw new TypeError('The value must be a string, ArrayBuffer, ArrayBufferView, ReadableStream or Blob.');
}

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

/** env.X for a KeyValue binding: Workers KV's KVNamespace. */
export function keyValueBinding(rpc: Rpc, name: string) {
  const getWithMetadata = async (key: string, type?: unknown) => {
    const entry = (await rpc(name, 'get', [String(key)])) as { value: Uint8Array; metadata?: unknown } | null;
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
      await rpc(name, 'put', [
        String(key),
        await toBytes(value),
        {
          ...(expiration !== undefined ? { expiration } : {}),
          ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
        },
      ]);
    },
    async delete(key: string) {
      await rpc(name, 'delete', [String(key)]);
    },
    async list(options: { prefix?: string; limit?: number; cursor?: string } = {}) {
      return rpc(name, 'list', [{ ...options }]);
    },
  });
}

/** env.X for a Database binding: parameterized queries, atomic batches, transactions. */
export function databaseBinding(rpc: Rpc, name: string) {
  const query = async (sql: string, params: unknown[] = []) => rpc(name, 'query', [{ sql, params }]);
  return Object.freeze({
    query,
    async batch(statements: { sql: string; params?: unknown[] }[]) {
      return rpc(name, 'batch', [statements.map((s) => ({ sql: s.sql, params: s.params ?? [] }))]);
    },
    /** Runs `fn` in a transaction: committed when it returns, rolled back when it throws. */
    async transaction<T>(
      fn: (tx: { query: typeof query }) => Promise<T>,
      options: { timeoutMs?: number } = {},
    ): Promise<T> {
      const tx = (await rpc(name, 'begin', [options.timeoutMs ?? 10_000])) as string;
      let result: T;
      try {
        result = await fn({
          query: (sql, params = []) => rpc(name, 'queryInTransaction', [tx, { sql, params }]),
        });
      } catch (err) {
        await rpc(name, 'rollback', [tx]).catch(() => undefined);
        throw err;
      }
      await rpc(name, 'commit', [tx]);
      return result;
    },
  });
}

type ContentType = 'json' | 'text' | 'bytes' | 'v8';

async function encodeMessage(
  body: unknown,
  contentType: ContentType | undefined,
): Promise<{ body: Uint8Array; contentType: ContentType }> {
  const type: ContentType =
    contentType ??
    (typeof body === 'string'
      ? 'text'
      : body instanceof ArrayBuffer || ArrayBuffer.isView(body)
        ? 'bytes'
        : 'json');
  if (type === 'json') return { body: encoder.encode(JSON.stringify(body)), contentType: type };
  if (type === 'text') return { body: encoder.encode(String(body)), contentType: type };
  if (type === 'bytes') return { body: await toBytes(body), contentType: type };
  throw new TypeError('contentType "v8" is not supported here: use json, text or bytes.');
}

/** Reads a message body back, by the content type it was sent with. */
export function decodeMessage(body: Uint8Array, contentType: ContentType): unknown {
  if (contentType === 'json') return JSON.parse(decoder.decode(body));
  if (contentType === 'text') return decoder.decode(body);
  return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
}

/** env.X for a Queue binding: Workers Queues' producer. */
export function queueBinding(rpc: Rpc, name: string) {
  return Object.freeze({
    async send(body: unknown, options: { contentType?: ContentType; delaySeconds?: number } = {}) {
      const m = await encodeMessage(body, options.contentType);
      await rpc(name, 'send', [
        [{ ...m, ...(options.delaySeconds ? { delaySeconds: options.delaySeconds } : {}) }],
      ]);
    },
    async sendBatch(
      messages: { body: unknown; contentType?: ContentType; delaySeconds?: number }[],
      options: { delaySeconds?: number } = {},
    ) {
      const encoded = await Promise.all(
        messages.map(async (m) => {
          const delay = m.delaySeconds ?? options.delaySeconds;
          return {
            ...(await encodeMessage(m.body, m.contentType)),
            ...(delay ? { delaySeconds: delay } : {}),
          };
        }),
      );
      await rpc(name, 'send', [encoded]);
    },
  });
}

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

/** env.X for a Bucket binding: R2's R2Bucket. */
export function bucketBinding(rpc: Rpc, name: string) {
  return Object.freeze({
    async put(
      key: string,
      value: unknown,
      options: { httpMetadata?: Record<string, string>; customMetadata?: Record<string, string> } = {},
    ) {
      return r2Object(
        (await rpc(name, 'put', [String(key), await toBytes(value), { ...options }])) as StoredObject,
      );
    },
    async get(
      key: string,
      options: { range?: { offset: number; length?: number } | { suffix: number } } = {},
    ) {
      const got = (await rpc(name, 'get', [String(key), { ...options }])) as {
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
      const o = (await rpc(name, 'head', [String(key)])) as StoredObject | null;
      return o ? r2Object(o) : null;
    },
    async delete(keys: string | string[]) {
      await rpc(name, 'delete', [keys]);
    },
    async list(options: { prefix?: string; delimiter?: string; cursor?: string; limit?: number } = {}) {
      const page = (await rpc(name, 'list', [{ ...options }])) as {
        objects: StoredObject[];
        delimitedPrefixes: string[];
        truncated: boolean;
        cursor?: string;
      };
      return { ...page, objects: page.objects.map(r2Object) };
    },
  });
}

/** Builds env: plain vars and secrets as strings, each bound resource as its binding object. */
export function buildEnv(
  rpc: Rpc,
  vars: Record<string, string>,
  bindings: Record<string, BindingKind>,
): Record<string, unknown> {
  const env: Record<string, unknown> = { ...vars };
  const make = {
    keyValue: keyValueBinding,
    database: databaseBinding,
    queue: queueBinding,
    bucket: bucketBinding,
  };
  for (const [name, kind] of Object.entries(bindings)) env[name] = make[kind](rpc, name);
  return Object.freeze(env);
}
