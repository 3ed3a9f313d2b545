/**
 * Table responses (meta.k8s.io/v1 Table), which kubectl asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: the server decides the columns, so
 * `kubectl get functions` shows what `kylix get functions` shows (src/kubernetes/columns.ts).
 */
import { columnsOf, hasName } from '../kubernetes/columns.js';
import type { KObject } from '../resources/meta.js';

/** Whether a request's Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io') && params.includes('v=v1');
  });
}

/** The columnDefinitions of a kind's table: NAME first (as kubectl's own), then the kind's. */
export function columnDefinitions(kind: string): Record<string, unknown>[] {
  const name = hasName(kind)
    ? [{ name: 'Name', type: 'string', format: 'name', description: 'The object name.', priority: 0 }]
    : [];
  return [
    ...name,
    ...columnsOf(kind).map((c) => ({
      name: c.header,
      // A cell is already text (an age, "<none>"): kubectl prints it as sent.
      type: 'string',
      format: '',
      description: c.description,
      priority: c.priority,
    })),
  ];
}

/** What each row carries besides its cells: None, Metadata (the default) or the whole Object. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** Reads `includeObject`; anything unknown counts as the default. */
export function includeObjectOf(value: string | undefined): IncludeObject {
  return value === 'None' || value === 'Object' ? value : 'Metadata';
}

/** One row of a Table. */
function row(o: KObject, include: IncludeObject, now: number): Record<string, unknown> {
  const cells = [
    ...(hasName(o.kind) ? [o.metadata.name] : []),
    ...columnsOf(o.kind).map((c) => c.cell(o, now)),
  ];
  const object =
    include === 'None'
      ? undefined
      : include === 'Object'
        ? o
        : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
  return { cells, ...(object ? { object } : {}) };
}

/**
 * A Table of `objects` (all of `kind`). `columns: false` leaves out the definitions, as the API
 * server does for every watch event after the first.
 */
export function toTable(
  kind: string,
  objects: KObject[],
  options: { include: IncludeObject; resourceVersion?: string; columns?: boolean },
): Record<string, unknown> {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: options.resourceVersion ? { resourceVersion: options.resourceVersion } : {},
    ...(options.columns === false ? {} : { columnDefinitions: columnDefinitions(kind) }),
    rows: objects.map((o) => row(o, options.include, now)),
  };
}
