/**
 * The Kubernetes-shaped envelope every kylix.dev/v1 object shares: apiVersion, kind, metadata and a
 * server-written status with conditions.
 */
import { z } from 'zod';

/** The API group and version of every Kylix kind. */
export const API_VERSION = 'kylix.dev/v1';
/** The API group alone, for discovery documents. */
export const API_GROUP = 'kylix.dev';

/** A DNS-1123 label (RFC 1123): what Kubernetes accepts for names and namespaces; at most 63 long. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 subdomain: labels joined by "."; Kylix's own Event names have this form. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** What a user reads when a name is not a DNS label. */
export const DNS_LABEL_RULE =
  'must be 1 to 63 lowercase letters, digits and "-", starting and ending with a letter or digit';

/** Whether `s` is a DNS-1123 label: the one test for every name and namespace, wherever it comes from. */
export function isDnsLabel(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 63 && DNS_LABEL.test(s);
}

/** Whether `s` is a DNS-1123 subdomain (at most 253 long), the wider form Kubernetes allows for some names. */
export function isDnsSubdomain(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 253 && DNS_SUBDOMAIN.test(s);
}

/** A DNS-1123 label as a schema. */
export const dnsLabel = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(DNS_LABEL, 'must be lowercase letters, digits and "-", starting and ending with a letter or digit');

/** metadata as a user may write it; the server fills in the rest. */
export const objectMetaSchema = z.strictObject({
  name: dnsLabel,
  namespace: dnsLabel.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  // Server-written fields are accepted back (kubectl round-trips them) and then overwritten.
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  ownerReferences: z.array(z.record(z.string(), z.unknown())).optional(),
});

/** One status condition, the Kubernetes way. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** Metadata as stored: every server-written field present. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid: string;
  resourceVersion: string;
  generation: number;
  creationTimestamp: string;
  ownerReferences?: Record<string, unknown>[];
}

/** Any stored Kylix object. */
export interface KObject<Spec = Record<string, unknown>, Status = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status & { conditions?: Condition[]; observedGeneration?: number };
  [extra: string]: unknown;
}

/** Sets (or replaces) one condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const previous = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : new Date().toISOString();
  const merged: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = merged;
  else list.push(merged);
  return list;
}
