/**
 * The KeyValue kind (Workers KV): its installation config, how its providers open, and the
 * operations a KeyValue binding may call. Gathered with the other kinds in ../registry.ts.
 */
import { z } from 'zod';
import { KEY_VALUE } from '../../resources/binding-kinds.js';
import { embeddedDataDir, embeddedSection } from '../embedded-config.js';
import { type BindingKind, operations } from '../kind.js';
import { redisConfigSchema } from './index.js';
import type { KeyValueProvider } from './interface.js';

const op = operations<KeyValueProvider>();

/** `backends.keyValue`: embedded, or Redis for a fleet. */
const config = z
  .discriminatedUnion('provider', [embeddedSection, redisConfigSchema])
  .default({ provider: 'embedded' });

/** See the file comment. */
export const keyValueKind = {
  name: KEY_VALUE,
  resourceKind: 'KeyValue',
  config,
  env: { KYLIX_REDIS_URL: (url) => ({ provider: 'redis', url }) },
  async open(c, dataDir) {
    const { createKeyValueProvider } = await import('./index.js');
    return createKeyValueProvider(
      c.provider === 'embedded' ? { provider: 'embedded', dataDir: embeddedDataDir(c, dataDir, 'kv') } : c,
    );
  },
  ops: {
    get: op(z.tuple([z.string()]), (kv, [key], { ref }) => kv.get(ref, key)),
    put: op(
      z.tuple([
        z.string(),
        z.instanceof(Uint8Array),
        z.strictObject({ expiration: z.number().optional(), metadata: z.unknown().optional() }),
      ]),
      (kv, [key, value, options], { ref }) => kv.put(ref, key, value, options),
    ),
    delete: op(z.tuple([z.string()]), (kv, [key], { ref }) => kv.delete(ref, key)),
    list: op(
      z.tuple([
        z.strictObject({
          prefix: z.string().optional(),
          limit: z.number().int().min(1).max(1000).optional(),
          cursor: z.string().optional(),
        }),
      ]),
      (kv, [options], { ref }) => kv.list(ref, options),
    ),
  },
} satisfies BindingKind<typeof KEY_VALUE, KeyValueProvider, typeof config>;
