/**
 * Where each Kylix kind lives on a cluster, and how its objects convert both ways:
 * - the kylix.dev/v1 kinds (Function, Database, KeyValue, Queue, Bucket, Revision, Event) are
 *   custom resources of the CRDs `kylix crds` prints, status in the status subresource;
 * - Secret is the cluster's own v1 Secret (see secrets.ts);
 * - every other kind the control plane keeps (schedule state, access tokens) is a ConfigMap
 *   labelled `kylix.dev/internal-kind`, the object in its data, so it needs no CRD.
 */
import { KINDS } from '../resources/kinds.js';
import { API_GROUP, API_VERSION, type KObject, type ObjectMeta } from '../resources/meta.js';
import type { KubeJson } from './client.js';

/** The label that marks a ConfigMap as one of Kylix's internal objects, with its kind. */
export const INTERNAL_KIND_LABEL = 'kylix.dev/internal-kind';

/** One kind of stored object on the cluster: its paths and conversions. */
export interface KubeResource {
  /** The Kylix kind it holds. */
  readonly kind: string;
  /** The list (and watch) path, of one namespace or all. */
  listPath(namespace?: string): string;
  /** The path of one object. */
  itemPath(namespace: string, name: string): string;
  /** Selectors every list and watch of it carries. */
  readonly selectors: { labelSelector?: string; fieldSelector?: string };
  /** Whether status is written through the status subresource (custom resources). */
  readonly statusSubresource: boolean;
  /** The Kylix object of a cluster object (undefined: not one of ours after all). */
  toKylix(o: KubeJson): KObject | undefined;
  /** The cluster object of a Kylix object (without resourceVersion; the store sets it). */
  toKube(o: KObject): KubeJson;
}

/** Kylix metadata from a cluster object's: what Kylix keeps, the server's managed fields dropped. */
export function kylixMeta(m: Record<string, unknown>, name = String(m.name)): ObjectMeta {
  return {
    name,
    namespace: String(m.namespace ?? ''),
    ...(m.labels ? { labels: m.labels as Record<string, string> } : {}),
    ...(m.annotations ? { annotations: m.annotations as Record<string, string> } : {}),
    uid: String(m.uid ?? ''),
    resourceVersion: String(m.resourceVersion ?? ''),
    generation: typeof m.generation === 'number' ? m.generation : 1,
    creationTimestamp: String(m.creationTimestamp ?? new Date().toISOString()),
    ...(Array.isArray(m.ownerReferences) && m.ownerReferences.length
      ? { ownerReferences: m.ownerReferences as Record<string, unknown>[] }
      : {}),
    ...(Array.isArray(m.finalizers) && m.finalizers.length ? { finalizers: m.finalizers.map(String) } : {}),
    ...(typeof m.deletionTimestamp === 'string' ? { deletionTimestamp: m.deletionTimestamp } : {}),
  };
}

/** Cluster metadata from Kylix's: the server assigns uid, generation and creationTimestamp itself. */
export function kubeMeta(m: ObjectMeta, name = m.name): Record<string, unknown> {
  return {
    name,
    namespace: m.namespace,
    ...(m.labels ? { labels: m.labels } : {}),
    ...(m.annotations ? { annotations: m.annotations } : {}),
    ...(m.ownerReferences?.length ? { ownerReferences: m.ownerReferences } : {}),
    // A replace without them would drop every finalizer (Kylix's own and anyone else's).
    ...(m.finalizers?.length ? { finalizers: m.finalizers } : {}),
  };
}

/**
 * A kylix.dev/v1 custom resource. The spec of a kind users write is read through its schema, so
 * an object applied with kubectl gets the same defaults as one applied through Kylix's API (a
 * spec the schema refuses is kept as it is; the Function controller reports it).
 */
export function customResource(kind: string, plural: string): KubeResource {
  const spec = KINDS[kind]?.spec;
  const base = `/apis/${API_GROUP}/v1`;
  return {
    kind,
    selectors: {},
    statusSubresource: true,
    listPath: (ns) => (ns === undefined ? `${base}/${plural}` : `${base}/namespaces/${ns}/${plural}`),
    itemPath: (ns, name) => `${base}/namespaces/${ns}/${plural}/${name}`,
    toKylix(o) {
      const { apiVersion: _a, kind: _k, metadata, ...rest } = o;
      const object: KObject = {
        apiVersion: API_VERSION,
        kind,
        metadata: kylixMeta(metadata ?? {}),
        ...rest,
      };
      if (spec && object.spec !== undefined) {
        const parsed = spec.safeParse(object.spec);
        if (parsed.success) object.spec = parsed.data as Record<string, unknown>;
      }
      return object;
    },
    toKube(o) {
      const { apiVersion: _a, kind: _k, metadata, status: _s, ...rest } = o;
      return { apiVersion: API_VERSION, kind, metadata: kubeMeta(metadata), ...rest };
    },
  };
}

/** The ConfigMap name of an internal object: its kind and name (a DNS subdomain, as ConfigMaps allow). */
const internalName = (kind: string, name: string) => `kylix-${kind.toLowerCase()}.${name}`;

/** An internal kind, kept in ConfigMaps (see the file comment). */
export function internalResource(kind: string): KubeResource {
  const prefix = internalName(kind, '');
  return {
    kind,
    selectors: { labelSelector: `${INTERNAL_KIND_LABEL}=${kind}` },
    statusSubresource: false,
    listPath: (ns) => (ns === undefined ? '/api/v1/configmaps' : `/api/v1/namespaces/${ns}/configmaps`),
    itemPath: (ns, name) => `/api/v1/namespaces/${ns}/configmaps/${internalName(kind, name)}`,
    toKylix(o) {
      const m = o.metadata ?? {};
      const name = String(m.name ?? '');
      if (!name.startsWith(prefix)) return undefined;
      const data = (o.data ?? {}) as { object?: string };
      let body: { spec?: Record<string, unknown>; status?: KObject['status']; [k: string]: unknown } = {};
      try {
        body = JSON.parse(data.object ?? '{}');
      } catch {
        return undefined;
      }
      const meta = kylixMeta(m, name.slice(prefix.length));
      if (meta.labels) {
        const { [INTERNAL_KIND_LABEL]: _, ...labels } = meta.labels;
        meta.labels = Object.keys(labels).length ? labels : undefined;
        if (!meta.labels) delete meta.labels;
      }
      return { ...body, apiVersion: API_VERSION, kind, metadata: meta };
    },
    toKube(o) {
      const { apiVersion: _a, kind: _k, metadata, ...body } = o;
      const meta = kubeMeta(metadata, internalName(kind, metadata.name));
      meta.labels = { ...(meta.labels as object), [INTERNAL_KIND_LABEL]: kind };
      return { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { object: JSON.stringify(body) } };
    },
  };
}

/** The kylix.dev kinds kept as custom resources (all API kinds but Secret, which is native). */
export function customResources(): KubeResource[] {
  return Object.values(KINDS)
    .filter((k) => k.kind !== 'Secret')
    .map((k) => customResource(k.kind, k.plural));
}

/** Every internal kind at once (one watch of the labelled ConfigMaps), each read as its own kind. */
export function internalStream(): KubeResource {
  const any = internalResource('');
  return {
    ...any,
    selectors: { labelSelector: INTERNAL_KIND_LABEL },
    toKylix(o) {
      const kind = (o.metadata?.labels as Record<string, string> | undefined)?.[INTERNAL_KIND_LABEL];
      return kind ? internalResource(kind).toKylix(o) : undefined;
    },
  };
}
