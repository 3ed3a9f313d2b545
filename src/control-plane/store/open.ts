/** Opens the state store the installation names: the embedded one in the data folder, or PostgreSQL. */
import type { Installation } from '../../config/installation.js';
import type { SharedBundles } from '../bundles.js';
import { openEmbeddedStore } from './embedded.js';
import type { Store } from './interface.js';
import { openPostgresStore } from './postgres.js';

/** The store, and where a fleet shares bundles (undefined when the store is this node's alone). */
export async function openStateStore(
  config: Installation['backends']['state'],
  embeddedDir: string,
): Promise<{ store: Store; sharedBundles?: SharedBundles }> {
  if (config.provider === 'postgres') {
    const store = await openPostgresStore({ url: config.url, schema: config.schema });
    return { store, sharedBundles: store };
  }
  return { store: await openEmbeddedStore(embeddedDir) };
}
