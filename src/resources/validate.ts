/**
 * Validation of incoming objects: every error at once, each with its field path
 * (`spec.routes[0].path: must start with "/"`), unknown fields included.
 */
import { z } from 'zod';
import { type ErrorCause, KylixError, quoteInput } from '../errors.js';
import { KINDS, type KindInfo } from './kinds.js';
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
      spec: info.spec ?? z.record(z.string(), z.unknown()),
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
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

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
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      causes.push({ field: join(issue.path), message: 'is required' });
    } else {
      causes.push({ field: join(issue.path), message: issue.message });
    }
  }
  return causes;
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
