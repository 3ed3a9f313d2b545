/**
 * Opens the state store the installation names: the embedded one in the data folder, PostgreSQL,
 * or a Kubernetes API server. The drivers of the networked ones are imported only when named.
 */
import type { Installation } from '../../config/installation.js';
import type { SharedBundles } from '../bundles.js';
import type { SecretBox } from '../secrets.js';
import { openEmbeddedStore } from './embedded.js';
import type { Store } from './interface.js';
import { openPostgresStore } from './postgres.js';

/** The store, and where a fleet shares bundles (undefined when the store is this node's alone). */
export async function openStateStore(
  config: Installation['backends']['state'],
  embeddedDir: string,
  /** The node's keyring: a Kubernetes store reads and writes native Secrets through it. */
  secrets?: SecretBox,
  log?: (message: string) => void,
): Promise<{ store: Store; sharedBundles?: SharedBundles }> {
  if (config.provider === 'postgres') {
    const store = await openPostgresStore({ url: config.url, schema: config.schema });
    return { store, sharedBundles: store };
  }
  if (config.provider === 'kubernetes') {
    if (!secrets) throw new Error('The Kubernetes state store needs the node keyring');
    const { openKubernetesStore } = await import('../../kubernetes/store.js');
    const store = await openKubernetesStore({
      ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
      ...(config.context ? { context: config.context } : {}),
      namespace: config.namespace,
      secrets,
      onWatchError: (kind, err, ms) =>
        log?.(
          `kylix: watching ${kind}s on the Kubernetes API server failed (retrying in ${ms} ms): ${(err as Error)?.message ?? err}`,
        ),
    });
    return { store, sharedBundles: store.bundles };
  }
  return { store: await openEmbeddedStore(embeddedDir) };
}
