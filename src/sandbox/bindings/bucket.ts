/**
 * env.X for a Bucket binding: R2's R2Bucket, as documented. R2Object and R2ObjectBody (httpEtag,
 * writeHttpMetadata, checksums, version, range), get/put with onlyIf (an object or Headers) and
 * ranges (an object or Headers), put's md5/sha checks, list with include and delimiter, delete of
 * many keys, and multipart uploads. Headers and dates become plain fields here; the supervisor
 * checks every one of them (src/bindings/bucket/kind.ts).
 */
import { caller, decoder, type Rpc, toBytes } from './common.js';

/** The operations this object calls: the same as the Bucket kind's (a unit test checks it). */
export const BUCKET_OPS = [
  'put',
  'get',
  'head',
  'delete',
  'list',
  'createMultipartUpload',
  'uploadPart',
  'completeMultipartUpload',
  'abortMultipartUpload',
] as const;

interface StoredObject {
  key: string;
  size: number;
  etag: string;
  uploaded: string;
  version: string;
  checksums: Record<string, string>;
  httpMetadata: Record<string, string>;
  customMetadata: Record<string, string>;
}

type Range = { offset: number; length?: number } | { suffix: number };
type OnlyIf = Record<string, unknown> | Headers;

/** httpMetadata field → response header, as writeHttpMetadata() writes them. */
const HTTP_HEADERS: [string, string][] = [
  ['contentType', 'content-type'],
  ['contentLanguage', 'content-language'],
  ['contentDisposition', 'content-disposition'],
  ['contentEncoding', 'content-encoding'],
  ['cacheControl', 'cache-control'],
];

function hexToBuffer(hex: string): ArrayBuffer {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out.buffer;
}

function toHex(value: unknown): string {
  if (typeof value === 'string') return value;
  const bytes =
    value instanceof ArrayBuffer
      ? new Uint8Array(value)
      : ArrayBuffer.isView(value)
        ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
        : undefined;
  if (!bytes) throw new TypeError('A checksum must be a hex string, an ArrayBuffer or a view of one.');
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** R2's R2Checksums: ArrayBuffers by algorithm, and toJSON() as hex. */
function checksums(hex: Record<string, string>) {
  const out: Record<string, unknown> = {};
  for (const [a, h] of Object.entries(hex)) out[a] = hexToBuffer(h);
  out.toJSON = () => ({ ...hex });
  return out;
}

function r2Object(o: StoredObject, range?: { offset: number; length: number }) {
  return {
    key: o.key,
    version: o.version,
    size: o.size,
    etag: o.etag,
    httpEtag: `"${o.etag}"`,
    uploaded: new Date(o.uploaded),
    httpMetadata: { ...o.httpMetadata },
    customMetadata: { ...o.customMetadata },
    checksums: checksums(o.checksums ?? {}),
    storageClass: 'Standard',
    ...(range ? { range } : {}),
    writeHttpMetadata(headers: Headers) {
      for (const [field, header] of HTTP_HEADERS) {
        const value = o.httpMetadata[field];
        if (value !== undefined) headers.set(header, value);
      }
    },
  };
}

function r2ObjectBody(o: StoredObject, bytes: Uint8Array, range?: { offset: number; length: number }) {
  // As on workerd, `body` is one stream, the same at every read of the property: apps test it
  // (`object.body ? 200 : 304`, R2's own docs example) and then hand it to a Response. Reading the
  // stream, or one of the methods below, uses the body up.
  let used = false;
  let streamed: Response | undefined;
  const disturbed = () => streamed !== undefined && (streamed.bodyUsed || streamed.body?.locked === true);
  const take = () => {
    if (used || disturbed()) throw new TypeError('The body of this object has already been read.');
    used = true;
    return bytes;
  };
  return {
    ...r2Object(o, range),
    get body() {
      if (used && !streamed) throw new TypeError('The body of this object has already been read.');
      streamed ??= new Response(bytes as Uint8Array<ArrayBuffer>);
      return streamed.body;
    },
    get bodyUsed() {
      return used || disturbed();
    },
    arrayBuffer: async () => {
      const b = take();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
    bytes: async () => new Uint8Array(take()),
    text: async () => decoder.decode(take()),
    json: async () => JSON.parse(decoder.decode(take())),
    blob: async () => new Blob([take() as Uint8Array<ArrayBuffer>]),
  };
}

/** A Range header ("bytes=a-b", "bytes=a-", "bytes=-n") as R2's range; a multi-range is refused. */
function rangeOf(range: Range | Headers | undefined): Range | undefined {
  if (!(range instanceof Headers)) return range;
  const header = range.get('range');
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new TypeError(`Unsupported Range header: ${header}`);
  if (m[1] === '') return { suffix: Number(m[2]) };
  const offset = Number(m[1]);
  return m[2] === '' ? { offset } : { offset, length: Number(m[2]) - offset + 1 };
}

const etags = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String);
const iso = (v: unknown): string | undefined =>
  v === undefined ? undefined : new Date(v as string | number | Date).toISOString();

/** onlyIf as plain fields: R2Conditional, or Headers (If-Match, If-None-Match, If-(Un)Modified-Since). */
function conditionalOf(onlyIf: OnlyIf | undefined): Record<string, unknown> | undefined {
  if (!onlyIf) return undefined;
  if (onlyIf instanceof Headers) {
    const list = (h: string) =>
      onlyIf
        .get(h)
        ?.split(',')
        .map((s) => s.trim());
    const out = {
      etagMatches: list('if-match'),
      etagDoesNotMatch: list('if-none-match'),
      uploadedBefore: iso(onlyIf.get('if-unmodified-since') ?? undefined),
      uploadedAfter: iso(onlyIf.get('if-modified-since') ?? undefined),
      secondsGranularity: true,
    };
    return JSON.parse(JSON.stringify(out));
  }
  const c = onlyIf as Record<string, unknown>;
  return JSON.parse(
    JSON.stringify({
      etagMatches: etags(c.etagMatches),
      etagDoesNotMatch: etags(c.etagDoesNotMatch),
      uploadedBefore: iso(c.uploadedBefore),
      uploadedAfter: iso(c.uploadedAfter),
      secondsGranularity: c.secondsGranularity === undefined ? undefined : Boolean(c.secondsGranularity),
    }),
  );
}

/** httpMetadata from an object or Headers, as the fields R2 keeps. */
function httpMetadataOf(
  m: Record<string, unknown> | Headers | undefined,
): Record<string, string> | undefined {
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [field, header] of HTTP_HEADERS) {
    const value = m instanceof Headers ? m.get(header) : m[field];
    if (value !== undefined && value !== null) out[field] = String(value);
  }
  return out;
}

/** See the file comment. */
export function bucketBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof BUCKET_OPS)[number]>(rpc, name);
  const upload = (key: string, uploadId: string) =>
    Object.freeze({
      key,
      uploadId,
      async uploadPart(partNumber: number, value: unknown) {
        return call('uploadPart', [key, uploadId, partNumber, await toBytes(value)]);
      },
      async abort() {
        await call('abortMultipartUpload', [key, uploadId]);
      },
      async complete(parts: { partNumber: number; etag: string }[]) {
        const done = await call('completeMultipartUpload', [
          key,
          uploadId,
          parts.map((p) => ({ partNumber: p.partNumber, etag: String(p.etag) })),
        ]);
        return r2Object(done as StoredObject);
      },
    });
  return Object.freeze({
    async put(
      key: string,
      value: unknown,
      options: {
        httpMetadata?: Record<string, unknown> | Headers;
        customMetadata?: Record<string, string>;
        onlyIf?: OnlyIf;
        md5?: unknown;
        sha1?: unknown;
        sha256?: unknown;
        sha384?: unknown;
        sha512?: unknown;
      } = {},
    ) {
      const sent: Record<string, unknown> = {};
      const http = httpMetadataOf(options.httpMetadata);
      if (http) sent.httpMetadata = http;
      if (options.customMetadata) sent.customMetadata = { ...options.customMetadata };
      const onlyIf = conditionalOf(options.onlyIf);
      if (onlyIf) sent.onlyIf = onlyIf;
      for (const a of ['md5', 'sha1', 'sha256', 'sha384', 'sha512'] as const)
        if (options[a] !== undefined) sent[a] = toHex(options[a]);
      const stored = (await call('put', [String(key), await toBytes(value), sent])) as StoredObject | null;
      return stored ? r2Object(stored) : null;
    },
    async get(key: string, options: { range?: Range | Headers; onlyIf?: OnlyIf } = {}) {
      const sent: Record<string, unknown> = {};
      const range = rangeOf(options.range);
      if (range) sent.range = { ...range };
      const onlyIf = conditionalOf(options.onlyIf);
      if (onlyIf) sent.onlyIf = onlyIf;
      const got = (await call('get', [String(key), sent])) as {
        object: StoredObject;
        body: Uint8Array | null;
        range?: { offset: number; length: number };
      } | null;
      if (!got) return null;
      // A failed precondition: R2 answers the object without a body.
      if (!got.body) return r2Object(got.object);
      return r2ObjectBody(got.object, got.body, got.range);
    },
    async head(key: string) {
      const o = (await call('head', [String(key)])) as StoredObject | null;
      return o ? r2Object(o) : null;
    },
    async delete(keys: string | string[]) {
      await call('delete', [Array.isArray(keys) ? keys.map(String) : String(keys)]);
    },
    async list(
      options: {
        prefix?: string;
        delimiter?: string;
        cursor?: string;
        limit?: number;
        include?: string[];
      } = {},
    ) {
      const sent = JSON.parse(JSON.stringify(options));
      const page = (await call('list', [sent])) as {
        objects: StoredObject[];
        delimitedPrefixes: string[];
        truncated: boolean;
        cursor?: string;
      };
      return { ...page, objects: page.objects.map((o) => r2Object(o)) };
    },
    async createMultipartUpload(
      key: string,
      options: {
        httpMetadata?: Record<string, unknown> | Headers;
        customMetadata?: Record<string, string>;
      } = {},
    ) {
      const sent: Record<string, unknown> = {};
      const http = httpMetadataOf(options.httpMetadata);
      if (http) sent.httpMetadata = http;
      if (options.customMetadata) sent.customMetadata = { ...options.customMetadata };
      return upload(String(key), (await call('createMultipartUpload', [String(key), sent])) as string);
    },
    /** Resumes an upload by its id: no call is made until a part is sent (as on R2). */
    resumeMultipartUpload: (key: string, uploadId: string) => upload(String(key), String(uploadId)),
  });
}
