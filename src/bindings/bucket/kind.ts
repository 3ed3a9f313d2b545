/**
 * The Bucket kind (R2): its installation config, how its providers open, and the operations a
 * Bucket binding may call. Gathered with the other kinds in ../registry.ts.
 */
import { z } from 'zod';
import { BUCKET } from '../../resources/binding-kinds.js';
import { embeddedDataDir, embeddedSection } from '../embedded-config.js';
import { type BindingKind, operations } from '../kind.js';
import type { BucketProvider } from './interface.js';

const op = operations<BucketProvider>();

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
        z.string().min(1).max(1024),
        z.instanceof(Uint8Array),
        z.strictObject({
          httpMetadata: z.record(z.string(), z.string()).optional(),
          customMetadata: z.record(z.string(), z.string()).optional(),
        }),
      ]),
      (bucket, [key, body, options], { ref }) => bucket.put(ref, key, body, options),
    ),
    /** Reads a whole object: bodies cross the sandbox boundary buffered, for now. */
    get: op(
      z.tuple([
        z.string(),
        z.strictObject({
          range: z
            .union([
              z.strictObject({ offset: z.number().int().min(0), length: z.number().int().min(0).optional() }),
              z.strictObject({ suffix: z.number().int().min(1) }),
            ])
            .optional(),
        }),
      ]),
      async (bucket, [key, options], { ref }) => {
        const got = await bucket.get(ref, key, options);
        if (!got) return null;
        const chunks: Uint8Array[] = [];
        for await (const c of got.body) chunks.push(c);
        return { object: got.object, range: got.range, body: Buffer.concat(chunks) };
      },
    ),
    head: op(z.tuple([z.string()]), (bucket, [key], { ref }) => bucket.head(ref, key)),
    delete: op(z.tuple([z.union([z.string(), z.array(z.string()).max(1000)])]), (bucket, [keys], { ref }) =>
      bucket.delete(ref, keys),
    ),
    list: op(
      z.tuple([
        z.strictObject({
          prefix: z.string().optional(),
          delimiter: z.string().optional(),
          cursor: z.string().optional(),
          limit: z.number().int().min(1).max(1000).optional(),
        }),
      ]),
      (bucket, [options], { ref }) => bucket.list(ref, options),
    ),
  },
} satisfies BindingKind<typeof BUCKET, BucketProvider, typeof config>;
