/**
 * Kylix's Events as the cluster's own `v1` Events too. Kylix keeps its Events as `events.kylix.dev`
 * custom resources (what `kylix describe` and `kylix get events` read), but Kubernetes users read
 * events with `kubectl describe fn NAME` and `kubectl get events`, which look only at core Events
 * whose involvedObject names the object. So each Event a node records is also written as one,
 * best effort: the cluster expires core Events itself (kube-apiserver's --event-ttl, 1 h by default).
 */
import { API_VERSION, type KObject } from '../resources/meta.js';
import type { KubeJson } from './client.js';

/** The core `v1` Event path of a namespace. */
export const coreEventsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/events`;

/** The core `v1` Event of a Kylix Event (same name, so a retry of one write cannot make two). */
export function coreEventOf(event: KObject): KubeJson {
  const e = event as KObject & {
    involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
    [field: string]: unknown;
  };
  const about = e.involvedObject ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: event.metadata.name,
      namespace: event.metadata.namespace,
      ...(event.metadata.labels ? { labels: event.metadata.labels } : {}),
    },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: about.kind,
      name: about.name,
      namespace: about.namespace ?? event.metadata.namespace,
      ...(about.uid ? { uid: about.uid } : {}),
    },
    type: e.type,
    reason: e.reason,
    message: e.message,
    firstTimestamp: e.firstTimestamp,
    lastTimestamp: e.lastTimestamp,
    count: e.count ?? 1,
    source: e.source ?? { component: 'kylix' },
    reportingComponent: 'kylix',
  };
}
