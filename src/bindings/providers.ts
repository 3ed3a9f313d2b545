/**
 * The installation's providers, one per kind, each created on first use from the installation
 * config (so an unused backend, and its driver, costs nothing) and closed with the node.
 */
import { join } from 'node:path';
import type { Installation } from '../config/installation.js';
import type { Providers } from './broker.js';
import type { Provider } from './provider.js';

/** Providers plus a way to close the ones that were opened. */
export interface OpenProviders extends Providers {
  close(): Promise<void>;
}

/** Builds the lazy providers for an installation; embedded ones keep their data under `dataDir`. */
export function createProviders(installation: Installation, dataDir: string): OpenProviders {
  const opened: Promise<Provider>[] = [];
  const once = <T extends Provider>(make: () => Promise<T>) => {
    let p: Promise<T> | undefined;
    return () => {
      if (!p) {
        p = make();
        // A failed start is retried on the next call rather than remembered.
        p.catch(() => {
          p = undefined;
        });
        opened.push(p);
      }
      return p;
    };
  };
  const { backends } = installation;
  return {
    keyValue: once(async () => {
      const { createKeyValueProvider } = await import('./keyvalue/index.js');
      const b = backends.keyValue;
      return createKeyValueProvider(
        b.provider === 'embedded' ? { provider: 'embedded', dataDir: join(dataDir, 'kv') } : b,
      );
    }),
    bucket: once(async () => {
      const { createBucketProvider } = await import('./bucket/index.js');
      const b = backends.bucket;
      if (b.provider === 'embedded')
        return createBucketProvider({ provider: 'embedded', dataDir: join(dataDir, 'buckets') });
      const { accessKeyId, secretAccessKey, ...rest } = b;
      return createBucketProvider({
        ...rest,
        ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      });
    }),
    queue: once(async () => {
      const { createQueueProvider } = await import('./queue/index.js');
      const b = backends.queue;
      return createQueueProvider(
        b.provider === 'embedded' ? { provider: 'embedded', dataDir: join(dataDir, 'queues') } : b,
      );
    }),
    database: once(async () => {
      const { createDatabaseProvider } = await import('./database/index.js');
      const b = backends.database;
      return createDatabaseProvider(
        b.provider === 'embedded' ? { provider: 'embedded', dataDir: join(dataDir, 'databases') } : b,
      );
    }),
    async close() {
      const all = await Promise.allSettled(opened);
      await Promise.all(
        all.map((r) => (r.status === 'fulfilled' ? r.value.close().catch(() => undefined) : undefined)),
      );
    },
  };
}
