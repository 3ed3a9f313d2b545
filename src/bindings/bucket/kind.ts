/**
 * The Bucket kind (R2): its installation config, how its providers open, and the operations a
 * Bucket binding may call. Gathered with the other kinds in ../registry.ts.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { BUCKET } from '../../resources/binding-kinds.js';
import { MAX_FRAME_BYTES } from '../../sandbox/channel.js';
import { embeddedDataDir, embeddedSection } from '../embedded-config.js';
import { type BindingKind, operations } from '../kind.js';
import { NamespaceBudget } from '../namespace-budget.js';
import { verifyChecksums } from './checks.js';
import { type BucketProvider, CHECKSUM_ALGORITHMS, type Checksums } from './interface.js';

const op = operations<BucketProvider>();

/** Keys are checked in full by the providers; this only bounds what reaches them. */
const objectKey = z.string().min(1).max(1024);
/** An upload id as the provider handed it out (S3's are opaque, but short and printable). */
const uploadId = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[\x21-\x7e]+$/);
const hex = z
  .string()
  .max(128)
  .regex(/^[0-9a-fA-F]+$/);
/** R2's onlyIf, as the guest sends it (Headers already turned into these fields, dates as ISO). */
const conditional = z.strictObject({
  etagMatches: z.array(z.string().max(256)).max(100).optional(),
  etagDoesNotMatch: z.array(z.string().max(256)).max(100).optional(),
  uploadedBefore: z.string().max(64).optional(),
  uploadedAfter: z.string().max(64).optional(),
  secondsGranularity: z.boolean().optional(),
});

const httpUrl = z
  .string()
  .refine(
    (u) => u.startsWith('http://') || u.startsWith('https://'),
    'must be a URL starting with http:// or https://',
  );

/**
 * `backends.bucket`: embedded, or any S3-compatible store for a fleet. Its S3 fields are flatter
 * than the provider's (credentials as two keys, path-style addressing on by default).
 */
const config = z
  .discriminatedUnion('provider', [
    embeddedSection,
    z.strictObject({
      provider: z.literal('s3'),
      /** The one S3 bucket that holds every Bucket resource, each under its own prefix. */
      bucket: z.string().min(3),
      prefix: z.string().optional(),
      endpoint: httpUrl.optional(),
      region: z.string().default('us-east-1'),
      accessKeyId: z.string().optional(),
      secretAccessKey: z.string().optional(),
      forcePathStyle: z.boolean().default(true),
    }),
  ])
  .default({ provider: 'embedded' });

/**
 * The largest object (or range) one get reads whole: what one binding result can carry to the
 * instance, with room for the object's metadata. Checked before reading, so a larger object costs
 * the supervisor nothing.
 */
const MAX_GET_BYTES = MAX_FRAME_BYTES - 2 ** 20;
/**
 * Object bytes the gets of the whole node may be reading into memory at once, one namespace at most
 * half of them (a result read and on its way to the instance is bounded by the channel's queue of
 * unread results instead).
 */
const reading = new NamespaceBudget(128 * 2 ** 20);

/** Why a get of `bytes` by `namespace` may not read now, if it may not. */
function mayRead(namespace: string, bytes: number): KylixError | undefined {
  if (bytes > MAX_GET_BYTES)
    return new KylixError(
      'ERR_BINDING_TOO_LARGE',
      `The object is ${bytes} bytes; one get through the binding carries at most ${MAX_GET_BYTES / 2 ** 20} MiB. Read it in ranges ({ range: { offset, length } }).`,
    );
  const share = reading.of(namespace);
  if (!share.fits(bytes))
    return new KylixError(
      'ERR_OVERLOADED',
      `Gets are reading ${Math.round(share.held / 2 ** 20)} MiB of this namespace's objects and ${Math.round(reading.held / 2 ** 20)} MiB of the node's at once; retry shortly, or read large objects in smaller ranges.`,
    );
  return undefined;
}

/** See the file comment. */
export const bucketKind = {
  name: BUCKET,
  resourceKind: 'Bucket',
  config,
  env: {
    KYLIX_S3_ENDPOINT: (endpoint, env) => ({
      provider: 's3',
      endpoint,
      bucket: env.KYLIX_S3_BUCKET ?? 'kylix',
      accessKeyId: env.KYLIX_S3_ACCESS_KEY_ID,
      secretAccessKey: env.KYLIX_S3_SECRET_ACCESS_KEY,
      region: env.KYLIX_S3_REGION ?? 'us-east-1',
    }),
  },
  async open(c, dataDir) {
    const { createBucketProvider } = await import('./index.js');
    if (c.provider === 'embedded')
      return createBucketProvider({ provider: 'embedded', dataDir: embeddedDataDir(c, dataDir, 'buckets') });
    const { accessKeyId, secretAccessKey, ...rest } = c;
    return createBucketProvider({
      ...rest,
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
    });
  },
  ops: {
    put: op(
      z.tuple([
        objectKey,
        z.instanceof(Uint8Array),
        z.strictObject({
          httpMetadata: z.record(z.string(), z.string()).optional(),
          customMetadata: z.record(z.string(), z.string()).optional(),
          onlyIf: conditional.optional(),
          ...Object.fromEntries(CHECKSUM_ALGORITHMS.map((a) => [a, hex.optional()])),
        }),
      ]),
      async (bucket, [key, body, { httpMetadata, customMetadata, onlyIf, ...expected }], { ref }) => {
        // The body is all here: checked before anything is stored, so a mismatch changes nothing.
        const checksums = await verifyChecksums(body, expected as Checksums);
        return bucket.put(ref, key, body, { httpMetadata, customMetadata, onlyIf, checksums });
      },
    ),
    /** Reads a whole object: bodies cross the sandbox boundary buffered, for now. */
    get: op(
      z.tuple([
        objectKey,
        z.strictObject({
          range: z
            .union([
              z.strictObject({ offset: z.number().int().min(0), length: z.number().int().min(0).optional() }),
              z.strictObject({ suffix: z.number().int().min(1) }),
            ])
            .optional(),
          onlyIf: conditional.optional(),
        }),
      ]),
      async (bucket, [key, options], { ref }) => {
        const got = await bucket.get(ref, key, options);
        if (!got) return null;
        if (!got.body) return { object: got.object, body: null };
        const bytes = got.range?.length ?? got.object.size;
        const refusal = mayRead(ref.namespace, bytes);
        if (refusal) {
          // Started, then stopped: a provider's body that has not started would skip the cleanup
          // (closing its file, giving back its connection) that stopping runs.
          for await (const _ of got.body) break;
          throw refusal;
        }
        reading.of(ref.namespace).take(bytes);
        try {
          // Read into one buffer of the announced size: no list of chunks and then a copy of them all.
          const body = Buffer.allocUnsafe(bytes);
          let at = 0;
          for await (const c of got.body) {
            if (at + c.byteLength > bytes)
              throw new KylixError(
                'ERR_BACKEND_UNAVAILABLE',
                'The bucket sent more bytes than the object holds.',
              );
            body.set(c, at);
            at += c.byteLength;
          }
          return { object: got.object, range: got.range, body: at === bytes ? body : body.subarray(0, at) };
        } finally {
          reading.of(ref.namespace).give(bytes);
        }
      },
    ),
    head: op(z.tuple([objectKey]), (bucket, [key], { ref }) => bucket.head(ref, key)),
    delete: op(z.tuple([z.union([objectKey, z.array(objectKey).max(1000)])]), (bucket, [keys], { ref }) =>
      bucket.delete(ref, keys),
    ),
    list: op(
      z.tuple([
        z.strictObject({
          prefix: z.string().max(1024).optional(),
          delimiter: z.string().max(1024).optional(),
          cursor: z.string().max(4096).optional(),
          limit: z.number().int().min(1).max(1000).optional(),
          include: z
            .array(z.enum(['httpMetadata', 'customMetadata']))
            .max(2)
            .optional(),
        }),
      ]),
      (bucket, [options], { ref }) => bucket.list(ref, options),
    ),
    createMultipartUpload: op(
      z.tuple([
        objectKey,
        z.strictObject({
          httpMetadata: z.record(z.string(), z.string()).optional(),
          customMetadata: z.record(z.string(), z.string()).optional(),
        }),
      ]),
      (bucket, [key, options], { ref }) => bucket.createMultipartUpload(ref, key, options),
    ),
    uploadPart: op(
      z.tuple([objectKey, uploadId, z.number().int(), z.instanceof(Uint8Array)]),
      (bucket, [key, id, partNumber, body], { ref }) => bucket.uploadPart(ref, key, id, partNumber, body),
    ),
    completeMultipartUpload: op(
      z.tuple([
        objectKey,
        uploadId,
        z.array(z.strictObject({ partNumber: z.number().int(), etag: z.string().max(256) })).max(10_000),
      ]),
      (bucket, [key, id, parts], { ref }) => bucket.completeMultipartUpload(ref, key, id, parts),
    ),
    abortMultipartUpload: op(z.tuple([objectKey, uploadId]), (bucket, [key, id], { ref }) =>
      bucket.abortMultipartUpload(ref, key, id),
    ),
  },
} satisfies BindingKind<typeof BUCKET, BucketProvider, typeof config>;
