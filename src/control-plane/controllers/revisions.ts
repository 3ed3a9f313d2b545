/**
 * Revisions: the immutable, numbered snapshots of a Function's template that the Function
 * controller makes (one per change of code or settings, named "<function>-<number>").
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FunctionSpec } from '../../resources/kinds.js';
import { API_VERSION, type KObject } from '../../resources/meta.js';

/** The label that ties Revisions to their Function. */
export const FUNCTION_LABEL = 'kylix.dev/function';

/** A revision's spec: the function's template at the time, plus its identity. */
export interface RevisionSpec extends FunctionSpec {
  functionName: string;
  number: number;
  generation: number;
  templateHash: string;
}

/** Fields of a Function's spec that route traffic or keep history; changing them makes no revision. */
const NOT_TEMPLATE = ['traffic', 'revisionHistoryLimit'] as const;

/** The revision-making part of a spec, hashed: same code and settings, same hash. */
export function templateHash(spec: FunctionSpec): string {
  const template: Record<string, unknown> = { ...spec };
  for (const k of NOT_TEMPLATE) delete template[k];
  const stable = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(stable)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, stable(x)]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(stable(template)))
    .digest('hex')
    .slice(0, 16);
}

/** A revision object's spec, typed. */
export function revSpec(o: KObject): RevisionSpec {
  return o.spec as unknown as RevisionSpec;
}

/** A new Revision object for `fn` (the template of `spec`, without the fields that make none). */
export function revisionObject(fn: KObject, spec: FunctionSpec, hash: string, number: number): KObject {
  const { namespace, name } = fn.metadata;
  const template: Record<string, unknown> = { ...spec };
  for (const k of NOT_TEMPLATE) delete template[k];
  return {
    apiVersion: API_VERSION,
    kind: 'Revision',
    metadata: {
      name: `${name}-${number}`,
      namespace,
      labels: { [FUNCTION_LABEL]: name },
      uid: randomUUID(),
      resourceVersion: '',
      generation: 1,
      creationTimestamp: new Date().toISOString(),
      ownerReferences: [
        { apiVersion: API_VERSION, kind: 'Function', name, uid: fn.metadata.uid, controller: true },
      ],
    },
    spec: {
      ...template,
      functionName: name,
      number,
      generation: fn.metadata.generation,
      templateHash: hash,
    },
  };
}
