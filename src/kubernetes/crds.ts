/**
 * CustomResourceDefinitions (apiextensions.k8s.io/v1) for every kylix.dev/v1 kind, generated from
 * the same zod schemas the API validates with (through the JSON Schemas `kylix schema` writes), so
 * a cluster and a Kylix node accept the same manifests. `kylix crds` prints them; the Helm chart
 * ships them in crds/.
 */
import { z } from 'zod';
import { KINDS, type KindInfo } from '../resources/kinds.js';
import { API_GROUP } from '../resources/meta.js';
import { objectSchema } from '../resources/validate.js';
import { columnsOf } from './columns.js';
import { DESCRIPTIONS } from './descriptions.js';
import { type JsonSchema, STATUS_SCHEMA, toStructural } from './structural.js';

/** The category every Kylix kind is in: `kubectl get kylix` lists them all. */
export const CATEGORY = 'kylix';

/** One CustomResourceDefinition, as the API server takes it. */
export type CustomResourceDefinition = Record<string, unknown> & {
  metadata: { name: string; labels?: Record<string, string> };
};

/** The DNS-label rule Kylix applies to names (Kubernetes alone would allow DNS subdomains). */
const NAME_SCHEMA: JsonSchema = {
  type: 'string',
  maxLength: 63,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
};

/**
 * The schemas of the server-written kinds, which have no zod spec: the fields they are known to
 * carry, typed, and the rest kept (a newer node may add fields an older CRD does not know).
 */
const SERVER_WRITTEN: Record<string, JsonSchema> = {
  Revision: {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        properties: {
          functionName: { type: 'string' },
          number: { type: 'integer', minimum: 1 },
          generation: { type: 'integer' },
          templateHash: { type: 'string' },
        },
      },
      status: STATUS_SCHEMA,
    },
  },
  Event: {
    type: 'object',
    properties: {
      involvedObject: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      type: { type: 'string', enum: ['Normal', 'Warning'] },
      reason: { type: 'string' },
      message: { type: 'string' },
      firstTimestamp: { type: 'string' },
      lastTimestamp: { type: 'string' },
      count: { type: 'integer' },
      source: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  },
};

/**
 * Rules on a kind's whole spec that zod checks in code (a `superRefine`), stated as the `required`
 * combinations a structural schema allows. Function: the code given exactly one way, as
 * `oneCodeSource` in src/resources/kinds.ts says: source, code or bundle must be there; code goes
 * with neither of the others; source may go with a bundle digest (kylix apply writes it) but not
 * with a bundle url. `maxLength: 0` makes that last branch match an object bundle only: it passes
 * any object and refuses every digest string.
 */
const SPEC_RULES: Record<string, JsonSchema> = {
  Function: {
    anyOf: [{ required: ['source'] }, { required: ['code'] }, { required: ['bundle'] }],
    not: {
      anyOf: [
        { required: ['code', 'source'] },
        { required: ['code', 'bundle'] },
        { required: ['source', 'bundle'], properties: { bundle: { required: ['url'], maxLength: 0 } } },
      ],
    },
  },
};

/** The openAPIV3Schema of one kind: its zod schema made structural, or the server-written one. */
export function crdSchemaFor(info: KindInfo): JsonSchema {
  const fixed = SERVER_WRITTEN[info.kind];
  const schema: JsonSchema = fixed
    ? structuredClone(fixed)
    : toStructural(
        z.toJSONSchema(objectSchema(info), { io: 'input', unrepresentable: 'any' }) as JsonSchema,
        'root',
        (path) => DESCRIPTIONS[info.kind]?.[path],
      );
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  // The API server owns apiVersion, kind and metadata; of metadata it lets a CRD restrict the name only.
  properties.apiVersion = { type: 'string' };
  properties.kind = { type: 'string' };
  properties.metadata = fixed ? { type: 'object' } : { type: 'object', properties: { name: NAME_SCHEMA } };
  if (!fixed) properties.status = STATUS_SCHEMA;
  schema.properties = properties;
  delete schema.required;
  const spec = properties.spec;
  if (spec && SPEC_RULES[info.kind]) Object.assign(spec, structuredClone(SPEC_RULES[info.kind]));
  // A spec with required fields (a Function's code) must be given; one without may be left out
  // and defaults to {} (as in Kylix), but a CRD's default must itself be valid, so only then.
  const required = (Array.isArray(spec?.required) && spec.required.length > 0) || SPEC_RULES[info.kind];
  if (!fixed && spec && required) {
    delete spec.default;
    schema.required = ['spec'];
  }
  schema.description = `kylix.dev/v1 ${info.kind}${info.readOnly ? ' (written by Kylix itself)' : ''}.`;
  return schema;
}

/** The CustomResourceDefinition of one kind. */
export function crdFor(info: KindInfo): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'kylix' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        ...(info.shortNames.length ? { shortNames: info.shortNames } : {}),
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: crdSchemaFor(info) },
          subresources: { status: {} },
          additionalPrinterColumns: columnsOf(info.kind).map((c) => ({
            name: c.header === 'AGE' ? 'Age' : titleCase(c.header),
            type: c.type,
            jsonPath: c.jsonPath,
            description: c.description,
            ...(c.priority ? { priority: c.priority } : {}),
          })),
        },
      ],
    },
  };
}

/** "LAST SEEN" → "Last Seen": kubectl upper-cases headers itself, CRDs conventionally title-case them. */
function titleCase(header: string): string {
  return header
    .toLowerCase()
    .split(' ')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

/** Every kind's CustomResourceDefinition, in the order the API lists the kinds. */
export function customResourceDefinitions(): CustomResourceDefinition[] {
  return Object.values(KINDS).map(crdFor);
}
