/**
 * The size limits of the control API and of kylix.dev/v1 objects, in one place: the schemas, the
 * API's body reader and docs/limits.md all use these. Where Kubernetes (or etcd behind it) has a
 * limit for the same thing, Kylix uses the same value.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest control API request body (as the Kubernetes API server): refused with 413 before parsing. */
export const MAX_REQUEST_BYTES = 3 * MiB;
/** The largest object, as JSON, that is stored (as etcd's default request limit). */
export const MAX_OBJECT_BYTES = 1.5 * MiB;
/** A YAML body that takes longer than this to parse (off the event loop) is refused. */
export const MAX_PARSE_MS = 10_000;
/** How many YAML aliases (`*name`) a document may expand; more is an "alias bomb" (billion laughs). */
export const MAX_YAML_ALIASES = 100;
/** How deeply a request body's arrays and objects may nest. */
export const MAX_BODY_DEPTH = 64;
/** How many fields (object keys and array items, at every depth) one object may hold. */
export const MAX_OBJECT_FIELDS = 10_000;

/** A label value (as Kubernetes): at most 63 characters. */
export const MAX_LABEL_VALUE = 63;
/** The name part of a label or annotation key (after an optional "prefix/"), as Kubernetes. */
export const MAX_KEY_NAME = 63;
/** The prefix of a label or annotation key: a DNS subdomain, as Kubernetes. */
export const MAX_KEY_PREFIX = 253;
/** How many labels one object may carry. */
export const MAX_LABELS = 64;
/** All of an object's annotations together, keys and values (as Kubernetes): 256 KiB. */
export const MAX_ANNOTATIONS_BYTES = 256 * KiB;
/** How many ownerReferences one object may carry. */
export const MAX_OWNER_REFERENCES = 20;

/** How many routes one Function may claim. */
export const MAX_ROUTES = 100;
/** How many environment variables one Function may set. */
export const MAX_ENV = 1000;
/** The largest environment variable value. */
export const MAX_ENV_VALUE_BYTES = 32 * KiB;
/** How many typed vars (spec.vars: numbers, booleans, arrays, objects) one Function may set. */
export const MAX_VARS = 1000;
/** The largest typed var, as JSON. */
export const MAX_VAR_VALUE_BYTES = 32 * KiB;
/**
 * The largest inline code (spec.code) of a Function. kubectl apply copies the whole manifest into
 * an annotation, and annotations together may hold 256 KiB: larger code goes in a bundle.
 */
export const MAX_INLINE_CODE_BYTES = 128 * KiB;
/** How many bindings one Function may have. */
export const MAX_BINDINGS = 100;
/** How many hosts a Function's egress allow-list may name. */
export const MAX_EGRESS_ALLOW = 100;
/** All of a Secret's values together, decoded (as Kubernetes): 1 MiB. */
export const MAX_SECRET_BYTES = 1 * MiB;
/** How many keys one Secret may hold. */
export const MAX_SECRET_KEYS = 1000;

/** A byte count as people read it: "1.5 MiB", "256 KiB", "63 bytes". */
export function formatBytes(n: number): string {
  if (n >= MiB && n % (MiB / 2) === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}
