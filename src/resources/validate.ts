/**
 * Validation of incoming objects: every error at once, each with its field path
 * (`spec.routes[0].path: must start with "/"`), unknown fields included.
 */
import { z } from 'zod';
import { type ErrorCause, KylixError, quoteInput } from '../errors.js';
import { KINDS, type KindInfo } from './kinds.js';
import {
  formatBytes,
  MAX_BODY_DEPTH,
  MAX_ENV,
  MAX_LABELS,
  MAX_OBJECT_BYTES,
  MAX_OBJECT_FIELDS,
  MAX_OWNER_REFERENCES,
  MAX_ROUTES,
  MAX_SECRET_KEYS,
  MAX_VARS,
} from './limits.js';
import { API_VERSION, objectMetaSchema } from './meta.js';

/** An object that passed validation, with spec defaults filled in. */
export interface ValidObject {
  apiVersion: string;
  kind: string;
  metadata: z.output<typeof objectMetaSchema>;
  spec: Record<string, unknown>;
  kindInfo: KindInfo;
}

const envelopes = new Map<string, z.ZodType>();

/** The whole-object schema for a kind (envelope + spec), built once. */
export function objectSchema(info: KindInfo): z.ZodType {
  let schema = envelopes.get(info.kind);
  if (!schema) {
    schema = z.strictObject({
      apiVersion: z.literal(API_VERSION, { error: `must be "${API_VERSION}"` }),
      kind: z.literal(info.kind),
      metadata: objectMetaSchema,
      // As on Kubernetes, an object whose spec fields are all optional needs no `spec:` line.
      spec: (info.spec ?? z.record(z.string(), z.unknown())).prefault({}),
      status: z.unknown().optional(),
    });
    envelopes.set(info.kind, schema);
  }
  return schema;
}

/** Formats a zod path the way kubectl users read them: `spec.routes[0].path`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    // A key is user input: a long one is cut short rather than repeated whole.
    const key = String(p).length > 64 ? `${String(p).slice(0, 64)}…` : String(p);
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${key}` : key;
  }
  return out || '(root)';
}

/** The most causes one error lists; a body with 20,000 bad keys gets a short answer. */
const MAX_CAUSES = 50;

/** Turns zod issues into one cause per problem; an unknown field is one cause each. */
export function issuesToCauses(issues: readonly z.core.$ZodIssue[], prefix = ''): ErrorCause[] {
  const causes: ErrorCause[] = [];
  const join = (path: readonly PropertyKey[]) => {
    const p = formatPath(path);
    if (!prefix) return p;
    return p === '(root)' ? prefix : `${prefix}${p.startsWith('[') ? '' : '.'}${p}`;
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        causes.push({ field: join([...issue.path, key]), message: 'unknown field' });
    } else if (
      issue.code === 'invalid_type' &&
      issue.input === undefined &&
      issue.message.startsWith('Invalid')
    ) {
      // zod's own wording for a missing field; a schema's own message (spec.env's) is kept.
      causes.push({ field: join(issue.path), message: 'is required' });
    } else if (issue.code === 'invalid_key') {
      causes.push({ field: join(issue.path), message: `key ${issue.issues[0]?.message ?? 'is not valid'}` });
    } else {
      causes.push({ field: join(issue.path), message: issue.message });
    }
  }
  if (causes.length <= MAX_CAUSES) return causes;
  const more = causes.length - MAX_CAUSES + 1;
  return [...causes.slice(0, MAX_CAUSES - 1), { field: '…', message: `and ${more} more problems` }];
}

/** Describes the object for error messages: `Function "hello"` or `document 2`. */
function label(input: Record<string, unknown>, where?: string): string {
  const meta = input.metadata as { name?: unknown } | undefined;
  const name = typeof meta?.name === 'string' ? ` ${quoteInput(meta.name)}` : '';
  const kind = typeof input.kind === 'string' && KINDS[input.kind] ? input.kind : 'object';
  return `${kind}${name}${where ? ` (${where})` : ''}`;
}

/**
 * Validates one object and returns it with defaults applied, or throws ERR_MANIFEST_INVALID listing
 * every problem. `where` names the file and document for the message.
 */
export function validateObject(input: unknown, where?: string): ValidObject {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${where ?? 'The object'} is not a mapping with apiVersion, kind, metadata and spec.`,
    );
  }
  const obj = input as Record<string, unknown>;
  checkObjectSize(obj, where);
  const info = typeof obj.kind === 'string' ? KINDS[obj.kind] : undefined;
  if (!info || info.readOnly) {
    const known = Object.values(KINDS)
      .filter((k) => !k.readOnly)
      .map((k) => k.kind)
      .join(', ');
    throw new KylixError('ERR_MANIFEST_INVALID', `${label(obj, where)} is not valid.`, [
      { field: 'kind', message: `must be one of ${known} (got ${quoteInput(obj.kind ?? null)})` },
    ]);
  }
  const result = objectSchema(info).safeParse(obj);
  if (!result.success) {
    const causes = issuesToCauses(result.error.issues);
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${label(obj, where)} is not valid: ${causes.length} problem${causes.length === 1 ? '' : 's'}. Fix the fields listed and apply again.`,
      causes,
    );
  }
  return { ...(result.data as Omit<ValidObject, 'kindInfo'>), kindInfo: info };
}

/** The depth of nested arrays and objects in `value` and how many fields they hold, walked without recursion. */
export function shapeOf(value: unknown): { depth: number; fields: number } {
  let depth = 0;
  let fields = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d + 1 > depth) depth = d + 1;
    if (depth > MAX_BODY_DEPTH || fields > MAX_OBJECT_FIELDS) break;
    for (const child of Object.values(v)) {
      fields++;
      stack.push([child, d + 1]);
    }
  }
  return { depth, fields };
}

/**
 * Collections with a count limit, checked before the schema runs: validating 20,000 env entries
 * one by one would take the event loop a quarter of a second only to refuse them. The schemas
 * carry the same limits (for `kylix schema` and for smaller objects).
 */
const COUNTED: { path: string[]; max: number; what: string }[] = [
  { path: ['spec', 'env'], max: MAX_ENV, what: 'environment variables' },
  { path: ['spec', 'vars'], max: MAX_VARS, what: 'vars' },
  { path: ['spec', 'routes'], max: MAX_ROUTES, what: 'routes' },
  { path: ['spec', 'stringData'], max: MAX_SECRET_KEYS, what: 'keys' },
  { path: ['spec', 'data'], max: MAX_SECRET_KEYS, what: 'keys' },
  { path: ['metadata', 'labels'], max: MAX_LABELS, what: 'labels' },
  { path: ['metadata', 'ownerReferences'], max: MAX_OWNER_REFERENCES, what: 'owner references' },
];

/**
 * Refuses an object nested deeper than MAX_BODY_DEPTH (which would overflow the stack of whatever
 * walks it next), with more than MAX_OBJECT_FIELDS fields or an over-long collection (which would
 * hold the event loop while validated), or larger, as JSON, than MAX_OBJECT_BYTES (as etcd, which
 * holds whole objects in memory). Returns the JSON, which the parse worker hands back.
 */
export function checkObjectSize(obj: unknown, where?: string): string {
  const what = where ? `The object (${where})` : 'The object';
  const refuse = (message: string, field: string, why: string) =>
    new KylixError('ERR_MANIFEST_INVALID', message, [{ field, message: why }]);
  const { depth, fields } = shapeOf(obj);
  if (depth > MAX_BODY_DEPTH)
    throw refuse(
      `${what} nests more than ${MAX_BODY_DEPTH} levels deep, the limit. Flatten it.`,
      '(root)',
      `must nest at most ${MAX_BODY_DEPTH} levels deep`,
    );
  for (const { path, max, what: items } of COUNTED) {
    let v: unknown = obj;
    for (const p of path)
      v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
    const n = typeof v === 'object' && v !== null ? Object.keys(v).length : 0;
    if (n > max)
      throw refuse(
        `${what} has ${n} ${items} in ${path.join('.')}, over the limit of ${max}.`,
        path.join('.'),
        `must hold at most ${max} ${items}`,
      );
  }
  if (fields > MAX_OBJECT_FIELDS)
    throw refuse(
      `${what} has more than ${MAX_OBJECT_FIELDS} fields, the limit per object. Keep large data in a Bucket or Database, not in a manifest.`,
      '(root)',
      `must hold at most ${MAX_OBJECT_FIELDS} fields`,
    );
  const json = JSON.stringify(obj) ?? '';
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_OBJECT_BYTES)
    throw refuse(
      `${what} is ${(bytes / 2 ** 20).toFixed(2)} MiB as JSON, over the limit of ${formatBytes(MAX_OBJECT_BYTES)} per object. Keep large data in a Bucket or Database, not in a manifest.`,
      '(root)',
      `must be at most ${formatBytes(MAX_OBJECT_BYTES)} as JSON`,
    );
  return json;
}
