/**
 * JSON Schemas of the kylix.dev/v1 kinds, derived from the zod schemas, so editors (the YAML language
 * server, VS Code) can complete and check manifests. `kylix schema` and the build write them to schemas/.
 */
import { z } from 'zod';
import { KINDS } from './kinds.js';
import { objectSchema } from './validate.js';

/** The JSON Schema (draft 2020-12) of one user-writable kind, as accepted on input. */
export function jsonSchemaFor(kind: string): Record<string, unknown> {
  const info = KINDS[kind];
  if (!info || info.readOnly) throw new Error(`no schema for kind ${kind}`);
  const schema = z.toJSONSchema(objectSchema(info), { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return {
    $id: `https://kylix.dev/schemas/v1/${info.singular}.json`,
    title: `kylix.dev/v1 ${kind}`,
    ...schema,
  };
}

/** Every user-writable kind's JSON Schema, keyed by file name (`function.json`, …). */
export function allJsonSchemas(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const info of Object.values(KINDS)) {
    if (!info.readOnly) out[`${info.singular}.json`] = jsonSchemaFor(info.kind);
  }
  return out;
}
