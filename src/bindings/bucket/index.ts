/**
 * Chooses the Bucket provider from the installation's config (never from a manifest): a folder on
 * disk for `kylix dev`, any S3-compatible store for a fleet. Each driver is imported only when chosen.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { issuesToCauses } from '../../resources/validate.js';
import type { BucketProvider } from './interface.js';

/** The Bucket section of the installation config. */
export const bucketConfigSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('embedded'),
    /** The folder holding a folder per bucket. */
    dataDir: z.string().min(1),
  }),
  z.strictObject({
    provider: z.literal('s3'),
    /** The one S3 bucket holding every Bucket resource, each under "<namespace>/<name>/". */
    bucket: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
        'must be an S3 bucket name (3-63 lowercase letters, digits, "." and "-")',
      ),
    prefix: z
      .string()
      .refine((p) => Buffer.byteLength(p) <= 64, 'must be at most 64 bytes')
      .optional(),
    endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    region: z.string().min(1).optional(),
    credentials: z
      .strictObject({
        accessKeyId: z.string().min(1),
        secretAccessKey: z.string().min(1),
        sessionToken: z.string().min(1).optional(),
      })
      .optional(),
    forcePathStyle: z.boolean().optional(),
    createBucket: z.boolean().optional(),
    partSize: z
      .number()
      .int()
      .min(5 * 1024 * 1024, 'must be at least 5 MiB (S3 refuses smaller parts)')
      .optional(),
  }),
]);

/** What createBucketProvider accepts. */
export type BucketConfig = z.input<typeof bucketConfigSchema>;

/** Validates the config and opens its provider; a bad config is ERR_CONFIG_INVALID naming every field. */
export async function createBucketProvider(config: BucketConfig): Promise<BucketProvider> {
  const parsed = bucketConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new KylixError(
      'ERR_CONFIG_INVALID',
      'The Bucket provider config is invalid; fix the fields below in the installation config.',
      issuesToCauses(parsed.error.issues, 'bucket'),
    );
  }
  const c = parsed.data;
  if (c.provider === 'embedded') {
    const { openEmbeddedBucket } = await import('./embedded.js');
    return openEmbeddedBucket({ dataDir: c.dataDir });
  }
  const { provider: _, ...s3 } = c;
  const { openS3Bucket } = await import('./s3.js');
  return openS3Bucket(s3);
}
