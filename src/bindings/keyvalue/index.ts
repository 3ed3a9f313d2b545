/**
 * Chooses the KeyValue provider from the installation's config (never from a manifest): the
 * embedded store for `kylix dev`, Redis for a fleet. Each driver is imported only when chosen.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { issuesToCauses } from '../../resources/validate.js';
import type { KeyValueProvider } from './interface.js';

/** The Redis provider's config, as the installation config's `backends.keyValue` takes it too. */
export const redisConfigSchema = z.strictObject({
  provider: z.literal('redis'),
  url: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL'),
  /** Put before every key, so that several installations can share one Redis. */
  keyPrefix: z.string().min(1).max(64).optional(),
});

/** What a KeyValue provider is opened with. */
export const keyValueConfigSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('embedded'),
    /** The folder holding the journal and snapshot. */
    dataDir: z.string().min(1),
  }),
  redisConfigSchema,
]);

/** What createKeyValueProvider accepts. */
export type KeyValueConfig = z.input<typeof keyValueConfigSchema>;

/** Validates the config and opens its provider; a bad config is ERR_CONFIG_INVALID naming every field. */
export async function createKeyValueProvider(config: KeyValueConfig): Promise<KeyValueProvider> {
  const parsed = keyValueConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new KylixError(
      'ERR_CONFIG_INVALID',
      'The KeyValue provider config is invalid; fix the fields below in the installation config.',
      issuesToCauses(parsed.error.issues, 'keyValue'),
    );
  }
  const c = parsed.data;
  if (c.provider === 'embedded') {
    const { openEmbeddedKeyValue } = await import('./embedded.js');
    return openEmbeddedKeyValue({ dataDir: c.dataDir });
  }
  const { openRedisKeyValue } = await import('./redis.js');
  return openRedisKeyValue({ url: c.url, keyPrefix: c.keyPrefix });
}
