/**
 * Secrets on a cluster are the cluster's own: a Function's `secret: NAME` binding reads the v1
 * Secret NAME of its namespace (made with kubectl, a Helm chart, an external-secrets operator…),
 * and a Secret applied through Kylix's API is written as one. Their values at rest are then the
 * cluster's concern (its EncryptionConfiguration), as for every other workload's Secrets.
 *
 * The control plane handles a Secret's values sealed (control-plane/secrets.ts), so the store
 * seals what it reads from the cluster with the node's keyring and opens what it writes; the
 * sealed form never leaves the node's memory. A kylix.dev/v1 Secret applied with kubectl (a Kylix
 * manifest as it is) is read as well; a native Secret of the same name takes precedence.
 */
import { KylixError } from '../errors.js';
import { API_VERSION, type KObject } from '../resources/meta.js';
import type { KubeJson } from './client.js';
import { customResource, type KubeResource, kubeMeta, kylixMeta } from './store-kinds.js';

/** What the store needs of the node's keyring (control-plane/secrets.ts SecretBox). */
export interface SealingBox {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

/** Service-account tokens are the cluster's, never a binding's: they stay out of every list and watch. */
const NOT_SA_TOKENS = 'type!=kubernetes.io/service-account-token';

/** The label Kylix puts on the Secrets it writes. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'kylix' };

/** Sealed values of plaintext ones. */
function sealAll(box: SealingBox, values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, box.seal(v)]));
}

/** The cluster's v1 Secrets as the Kylix Secret kind. */
export function nativeSecrets(box: SealingBox): KubeResource {
  return {
    kind: 'Secret',
    selectors: { fieldSelector: NOT_SA_TOKENS },
    statusSubresource: false,
    listPath: (ns) => (ns === undefined ? '/api/v1/secrets' : `/api/v1/namespaces/${ns}/secrets`),
    itemPath: (ns, name) => `/api/v1/namespaces/${ns}/secrets/${name}`,
    toKylix(o) {
      const values: Record<string, string> = {};
      for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, string>))
        values[k] = Buffer.from(v, 'base64').toString('utf8');
      for (const [k, v] of Object.entries((o.stringData ?? {}) as Record<string, string>)) values[k] = v;
      return {
        apiVersion: API_VERSION,
        kind: 'Secret',
        metadata: kylixMeta(o.metadata ?? {}),
        spec: { sealed: sealAll(box, values) },
      };
    },
    toKube(o) {
      const sealed = ((o.spec ?? {}) as { sealed?: Record<string, string> }).sealed;
      if (!sealed)
        throw new KylixError(
          'ERR_INTERNAL',
          `Secret "${o.metadata.name}" reached the store without sealed values.`,
        );
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(sealed)) data[k] = Buffer.from(box.open(v)).toString('base64');
      const meta = kubeMeta(o.metadata);
      meta.labels = { ...(meta.labels as object), ...MANAGED_BY };
      return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: meta, data };
    },
  };
}

/**
 * kylix.dev/v1 Secrets applied with kubectl, read as Secrets (values from stringData and data).
 * Kylix never writes them: its writes go to native Secrets.
 */
export function customSecrets(box: SealingBox): KubeResource {
  const cr = customResource('Secret', 'secrets');
  return {
    ...cr,
    toKylix(o: KubeJson) {
      const spec = (o.spec ?? {}) as { stringData?: Record<string, string>; data?: Record<string, string> };
      const values: Record<string, string> = { ...spec.stringData };
      for (const [k, v] of Object.entries(spec.data ?? {}))
        values[k] = Buffer.from(v, 'base64').toString('utf8');
      return {
        apiVersion: API_VERSION,
        kind: 'Secret',
        metadata: kylixMeta(o.metadata ?? {}),
        spec: { sealed: sealAll(box, values) },
      } satisfies KObject;
    },
  };
}
