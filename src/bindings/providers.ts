/**
 * The installation's providers, one per kind of the registry, each created on first use from the
 * installation config (so an unused backend, and its driver, costs nothing) and closed with the node.
 */
import type { Installation } from '../config/installation.js';
import type { Provider } from './provider.js';
import { ALL_BINDING_KINDS, type Providers } from './registry.js';

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
  const providers = Object.fromEntries(
    ALL_BINDING_KINDS.map((kind) => [
      kind.name,
      once<Provider>(() => kind.open(installation.backends[kind.name], dataDir)),
    ]),
  ) as Providers;
  return {
    ...providers,
    async close() {
      const all = await Promise.allSettled(opened);
      await Promise.all(
        all.map((r) => (r.status === 'fulfilled' ? r.value.close().catch(() => undefined) : undefined)),
      );
    },
  };
}
