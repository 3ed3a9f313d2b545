/**
 * The Kubernetes-shaped envelope every kylix.dev/v1 object shares: apiVersion, kind, metadata and a
 * server-written status with conditions.
 */
import { z } from 'zod';
import {
  formatBytes,
  MAX_ANNOTATIONS_BYTES,
  MAX_KEY_NAME,
  MAX_KEY_PREFIX,
  MAX_LABEL_VALUE,
  MAX_LABELS,
  MAX_OWNER_REFERENCES,
} from './limits.js';

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

/** The name part of a label or annotation key (and a label value), as Kubernetes has it. */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Whether `key` is a Kubernetes qualified name: an optional DNS-subdomain prefix and "/", then a name. */
function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return false;
  return name.length <= MAX_KEY_NAME && QUALIFIED_NAME.test(name);
}

/** A label or annotation key, checked as Kubernetes checks it. */
const qualifiedKey = z
  .string()
  .max(MAX_KEY_PREFIX + 1 + MAX_KEY_NAME, `must be at most ${MAX_KEY_PREFIX + 1 + MAX_KEY_NAME} characters`)
  .refine(
    isQualifiedName,
    `must be a name of at most ${MAX_KEY_NAME} letters, digits, "-", "_" and "." (starting and ending with a letter or digit), optionally after a DNS subdomain prefix of at most ${MAX_KEY_PREFIX} characters and "/"`,
  );

/** Labels: selectable, so short (as Kubernetes). */
export const labelsSchema = z
  .record(
    qualifiedKey,
    z
      .string()
      .max(MAX_LABEL_VALUE, `a label value must be at most ${MAX_LABEL_VALUE} characters`)
      .regex(
        /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/,
        'a label value must be empty or letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
      ),
  )
  .refine((l) => Object.keys(l).length <= MAX_LABELS, `must hold at most ${MAX_LABELS} labels`)
  .meta({ maxProperties: MAX_LABELS });

/** The bytes of annotations' keys and values together. */
function annotationBytes(a: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(a)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/** Annotations: free text, but at most 256 KiB together (as Kubernetes). */
export const annotationsSchema = z
  .record(qualifiedKey, z.string().max(MAX_ANNOTATIONS_BYTES))
  .refine(
    (a) => annotationBytes(a) <= MAX_ANNOTATIONS_BYTES,
    `keys and values together must be at most ${formatBytes(MAX_ANNOTATIONS_BYTES)}`,
  );

/** metadata as a user may write it; the server fills in the rest. */
export const objectMetaSchema = z.strictObject({
  name: dnsLabel,
  namespace: dnsLabel.optional(),
  labels: labelsSchema.optional(),
  annotations: annotationsSchema.optional(),
  // Server-written fields are accepted back (kubectl round-trips them) and then overwritten.
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  ownerReferences: z
    .array(z.record(z.string().max(MAX_KEY_NAME), z.union([z.string().max(MAX_KEY_PREFIX), z.boolean()])))
    .max(MAX_OWNER_REFERENCES, `must hold at most ${MAX_OWNER_REFERENCES} owner references`)
    .optional(),
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
  /** Kubernetes only (Store.finalizers): what must happen before a deleted object goes. */
  finalizers?: string[];
  /** Kubernetes only: when a delete was asked for, while finalizers still hold the object. */
  deletionTimestamp?: string;
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
