/**
 * Chooses the Queue provider from the installation config, validated once. Each provider's module
 * (and its driver) is imported only when chosen, so an unused backend costs nothing.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { issuesToCauses } from '../../resources/validate.js';
import type { QueueProvider } from './interface.js';

/** The NATS JetStream provider's config, as the installation config's `backends.queue` takes it too. */
export const natsConfigSchema = z.strictObject({
  provider: z.literal('nats'),
  /** nats://host:port, comma-separated for several servers. */
  url: z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'must be a nats:// or tls:// URL'),
  /** Stream replicas: 3 in a cluster. */
  replicas: z.number().int().min(1).max(5).optional(),
  /** The server's monitoring URL, so health() can check its fsync policy. */
  monitorUrl: z.url().optional(),
});

/** What a Queue provider is opened with. */
export const queueConfigSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('embedded'),
    /** The folder that holds the queue journal. */
    dataDir: z.string().min(1),
  }),
  natsConfigSchema,
]);

/** A validated queue config. */
export type QueueConfig = z.infer<typeof queueConfigSchema>;

/** Opens the configured Queue provider; a bad config is an ERR_CONFIG_INVALID naming every field. */
export async function createQueueProvider(config: unknown): Promise<QueueProvider> {
  const result = queueConfigSchema.safeParse(config);
  if (!result.success)
    throw new KylixError(
      'ERR_CONFIG_INVALID',
      'The queue backend config is invalid: use {provider: "embedded", dataDir} or {provider: "nats", url}.',
      issuesToCauses(result.error.issues, 'queue'),
    );
  const c = result.data;
  if (c.provider === 'embedded') {
    const { openEmbeddedQueue } = await import('./embedded.js');
    return openEmbeddedQueue({ dataDir: c.dataDir });
  }
  const { openNatsQueue } = await import('./nats.js');
  return openNatsQueue({ url: c.url, replicas: c.replicas, monitorUrl: c.monitorUrl });
}
