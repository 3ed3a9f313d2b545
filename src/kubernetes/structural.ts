/**
 * Turns the JSON Schemas zod derives from the kind schemas into Kubernetes *structural* schemas
 * (what apiextensions.k8s.io/v1 requires): every node typed, no $ref, no const, no propertyNames,
 * unions of objects folded into one object with `oneOf` of `required`, and the rules zod checks in
 * code (refinements) stated as patterns where a pattern can state them.
 *
 * What a CRD cannot state in Kubernetes 1.20 (no CEL) stays a check of Kylix's own admission:
 * the names of map keys (env variable names, secret keys, label keys), cross-field rules (a traffic
 * entry names a revision or latestRevision; percents add up to 100; unique tags), IANA time zones
 * and byte (not character) sizes. docs/kubernetes.md lists them; the CRD test proves the rest agree.
 */

/** A JSON Schema / OpenAPI v3 schema node. */
export type JsonSchema = Record<string, unknown>;

/** The status of every kind: written by Kylix through the status subresource, kept whole. */
export const STATUS_SCHEMA: JsonSchema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

/** Keywords copied as they are: the value validations both JSON Schema and Kubernetes know. */
const COPIED = [
  'type',
  'description',
  'required',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'enum',
  'default',
] as const;

/** Keywords dropped on purpose (see the header for why each cannot be a CRD rule). */
const DROPPED = new Set(['$schema', '$id', 'title', 'propertyNames', 'contentEncoding']);

/** A JSON number that is only zod's way of saying "a safe integer": no rule at all. */
const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Rules zod checks in code (`.refine`) that a pattern states exactly, by the node's path
 * ("spec.routes[].path"); the CRD carries them so a cluster refuses what Kylix refuses.
 */
const REFINED: Record<string, JsonSchema> = {
  // routePath: starts with "/", "*" only as the whole last segment, ":name" parameter segments.
  'spec.routes[].path': {
    minLength: 1,
    pattern: '^(/(:[A-Za-z_][A-Za-z0-9_]*|[^/:*][^/*]*)?)*(/\\*)?$',
  },
  // A cron expression of five fields.
  'spec.triggers.schedule.cron': { pattern: '^\\s*\\S+(\\s+\\S+){4}\\s*$' },
  // A traffic tag must not contain "--" (it separates the tag in host names).
  'spec.traffic[].tag': { pattern: '^[a-z0-9]([a-z0-9]|-[a-z0-9])*$' },
  // A bundle url: http:// or https:// (what parses as a URL beyond that stays Kylix's check).
  'spec.bundle.url': { pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' },
};

/** Gives the description of the field at a path, if there is one. */
export type Describe = (path: string) => string | undefined;

/** Converts one zod-derived JSON Schema node (and its children) at `path` into a structural one. */
export function toStructural(
  node: JsonSchema,
  path: string,
  describe: Describe = () => undefined,
): JsonSchema {
  if ('$ref' in node || '$defs' in node)
    throw new Error(`structural schema: ${path} uses $ref, which a CRD cannot; inline the schema`);
  if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf))
    return withDescription(
      union((node.anyOf ?? node.oneOf) as JsonSchema[], node, path, describe),
      describe(path),
    );
  const out: JsonSchema = {};
  for (const key of COPIED) if (key in node) out[key] = structuredClone(node[key]);
  if ('const' in node) out.enum = [node.const];
  if (node.format === 'base64') out.format = 'byte';
  if (out.minimum === -SAFE) delete out.minimum;
  if (out.maximum === SAFE) delete out.maximum;
  for (const key of Object.keys(node)) {
    const known =
      (COPIED as readonly string[]).includes(key) ||
      DROPPED.has(key) ||
      ['const', 'format', 'properties', 'items', 'additionalProperties'].includes(key);
    if (!known)
      throw new Error(`structural schema: ${path} uses "${key}", which the CRD generator does not map`);
  }
  if (node.properties) {
    const props: Record<string, JsonSchema> = {};
    for (const [k, v] of Object.entries(node.properties as Record<string, JsonSchema>))
      props[k] = toStructural(v, path === 'root' ? k : `${path}.${k}`, describe);
    out.properties = props;
    // An object with no fields at all (a Bucket's spec): keep what is given (not pruned) and allow
    // none of it, or the cluster would silently drop a field rather than refuse it.
    if (Object.keys(props).length === 0 && node.additionalProperties === false) {
      out.maxProperties = 0;
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  }
  if (node.items) out.items = toStructural(node.items as JsonSchema, `${path}[]`, describe);
  // `additionalProperties: false` is what a structural schema does anyway (unknown fields are
  // pruned on a cluster; kubectl's validation refuses them); a schema makes it a map.
  if (typeof node.additionalProperties === 'object')
    out.additionalProperties = toStructural(node.additionalProperties as JsonSchema, `${path}{}`, describe);
  else if (node.additionalProperties === true) out['x-kubernetes-preserve-unknown-fields'] = true;
  if (!out.type && !out.enum) {
    // zod's "unknown": anything goes, kept as is.
    return withDescription({ ...out, 'x-kubernetes-preserve-unknown-fields': true }, describe(path));
  }
  Object.assign(out, REFINED[path]);
  return withDescription(out, describe(path));
}

/** The node with its description first (where kubectl explain and readers look). */
function withDescription(node: JsonSchema, description: string | undefined): JsonSchema {
  return description ? { description, ...node } : node;
}

/**
 * A union. Of objects (a binding: exactly one of database, keyValue, queue, bucket, secret+key):
 * one object with all their properties and `oneOf` of each branch's required fields, each branch
 * also refusing the other branches' fields. Of anything else: kept unchecked.
 */
function union(branches: JsonSchema[], node: JsonSchema, path: string, describe: Describe): JsonSchema {
  const strings = branches.filter((b) => b.type === 'string');
  const objects = branches.filter((b) => b.type === 'object' && b.properties);
  if (strings.length === 1 && objects.length === 1 && branches.length === 2)
    return stringOrObject(strings[0] as JsonSchema, objects[0] as JsonSchema, node, path, describe);
  if (!branches.every((b) => b.type === 'object' && b.properties)) {
    return { 'x-kubernetes-preserve-unknown-fields': true, ...pick(node, ['description', 'default']) };
  }
  const properties: Record<string, JsonSchema> = {};
  for (const b of branches)
    for (const [k, v] of Object.entries(b.properties as Record<string, JsonSchema>))
      properties[k] ??= toStructural(v, `${path}.${k}`, describe);
  const all = Object.keys(properties);
  const oneOf = branches.map((b) => {
    const own = Object.keys(b.properties as object);
    const others = all.filter((k) => !own.includes(k));
    return {
      required: (b.required as string[] | undefined) ?? [],
      ...(others.length ? { not: { anyOf: others.map((k) => ({ required: [k] })) } } : {}),
    };
  });
  return { type: 'object', properties, oneOf, ...pick(node, ['description', 'default']) };
}

function pick(node: JsonSchema, keys: string[]): JsonSchema {
  return Object.fromEntries(keys.filter((k) => k in node).map((k) => [k, node[k]]));
}

/**
 * A string or an object (a Function's bundle: a digest, or { url?, sha256 }). A structural schema
 * cannot type a node as either (x-kubernetes-int-or-string is for integers only), so the node is
 * left untyped and kept (x-kubernetes-preserve-unknown-fields), and each branch's rules are
 * stated with keywords that only apply to their own type: `pattern`/`maxLength` check a string
 * and pass an object; `properties`, `required` and `maxProperties` check an object and pass a
 * string. What this cannot state (an object's unknown fields, a value that is neither) stays
 * Kylix's own check; the CRD test pins those differences.
 */
function stringOrObject(
  str: JsonSchema,
  obj: JsonSchema,
  node: JsonSchema,
  path: string,
  describe: Describe,
): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(obj.properties as Record<string, JsonSchema>))
    properties[k] = toStructural(v, `${path}.${k}`, describe);
  const out: JsonSchema = { 'x-kubernetes-preserve-unknown-fields': true };
  for (const key of ['minLength', 'maxLength', 'pattern'] as const) if (key in str) out[key] = str[key];
  out.properties = properties;
  if (Array.isArray(obj.required) && obj.required.length) out.required = obj.required;
  out.maxProperties = Object.keys(properties).length;
  return { ...out, ...pick(node, ['description', 'default']) };
}
