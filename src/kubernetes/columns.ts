/**
 * The table columns of every kylix.dev/v1 kind, declared once: `kylix get` prints them, the control
 * API returns them as Kubernetes Table responses (so `kubectl get` shows the same), and the CRDs
 * carry them as additionalPrinterColumns (so `kubectl get` on a cluster shows the same again).
 */
import type { KObject } from '../resources/meta.js';

/** One column after NAME (which every table has first, as kubectl's). */
export interface Column {
  /** The header as `kylix get` prints it ("REVISION"); a CRD column is named in the same words. */
  header: string;
  /** The OpenAPI type of the cell, as Table columnDefinitions and CRD printer columns name it. */
  type: 'string' | 'integer' | 'date';
  /** Where a CRD finds the value (simple JSONPath, as additionalPrinterColumns take). */
  jsonPath: string;
  /** 0: always shown; 1: only with -o wide (kubectl's priority). */
  priority: 0 | 1;
  /** What the cell says, computed from the object (the same text `kylix get` prints). */
  cell: (o: KObject, now: number) => string;
  /** What the column means, for Table columnDefinitions and the CRD. */
  description: string;
}

/** "42s", "5m", "3h", "2d" since an ISO time, as kubectl shows AGE. */
export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function ready(o: KObject): string {
  const c = o.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? c.status : 'Unknown';
}

const READY_PATH = '.status.conditions[?(@.type=="Ready")].status';

const AGE: Column = {
  header: 'AGE',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  priority: 0,
  cell: (o, now) => age(o.metadata.creationTimestamp, now),
  description: 'Time since the object was created.',
};

const READY: Column = {
  header: 'READY',
  type: 'string',
  jsonPath: READY_PATH,
  priority: 0,
  cell: (o) => ready(o),
  description: 'The status of the Ready condition.',
};

/** A Function's routes as one cell: "GET,POST shop.example.com/api/*,/health". */
function routesCell(o: KObject): string {
  const spec = (o.spec ?? {}) as { routes?: { path: string; host?: string; methods?: string[] }[] };
  return (
    (spec.routes ?? [])
      .map((r) => `${r.methods ? `${r.methods.join(',')} ` : ''}${r.host ?? ''}${r.path}`)
      .join(',') || '<none>'
  );
}

/** The Ready condition's reason, shown with -o wide, for an object called `what` in its description. */
function reasonColumn(what: string): Column {
  return {
    header: 'REASON',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    priority: 1,
    cell: (o) => o.status?.conditions?.find((x) => x.type === 'Ready')?.reason ?? '',
    description: `Why the ${what} is (not) ready.`,
  };
}

/** Database, KeyValue, Queue and Bucket: which backend serves the resource, and whether it is provisioned. */
const BACKED: Column[] = [
  {
    header: 'BACKEND',
    type: 'string',
    jsonPath: '.status.backend',
    priority: 0,
    cell: (o) => String((o.status as { backend?: unknown } | undefined)?.backend ?? '<none>'),
    description: 'The backend that serves the resource (the installation chooses it).',
  },
  READY,
  AGE,
  reasonColumn('resource'),
];

const COLUMNS: Record<string, Column[]> = {
  Database: BACKED,
  KeyValue: BACKED,
  Queue: BACKED,
  Bucket: BACKED,
  Function: [
    {
      header: 'REVISION',
      type: 'integer',
      jsonPath: '.status.latestReadyRevision',
      priority: 0,
      cell: (o) => String(o.status?.latestReadyRevision ?? '<none>'),
      description: 'The newest revision that is ready.',
    },
    {
      header: 'ROUTES',
      type: 'string',
      jsonPath: '.spec.routes[*].path',
      priority: 0,
      cell: routesCell,
      description: 'The routes the function serves.',
    },
    READY,
    AGE,
    reasonColumn('function'),
    {
      header: 'BUNDLE',
      type: 'string',
      // Not .spec.bundle: the code may be given as source, code or a { url, sha256 } object, and a
      // printer column shows one JSONPath. The controller writes the digest of the code it
      // observed, whichever the form, to status.bundle (kubectl shows it whole; kylix get, the
      // "sha256:" and 12 hex digits that name it in events and kylix rollout).
      jsonPath: '.status.bundle',
      priority: 1,
      cell: (o) => {
        const digest = (o.status as { bundle?: unknown } | undefined)?.bundle;
        return typeof digest === 'string' ? digest.slice(0, 19) : '<none>';
      },
      description:
        'The content address (sha256) of the code of the observed generation, however it was given.',
    },
  ],
  Revision: [
    {
      header: 'FUNCTION',
      type: 'string',
      jsonPath: '.spec.functionName',
      priority: 0,
      cell: (o) => String((o.spec as { functionName?: string } | undefined)?.functionName ?? ''),
      description: 'The function this is a revision of.',
    },
    {
      header: 'REVISION',
      type: 'integer',
      jsonPath: '.spec.number',
      priority: 0,
      cell: (o) => String((o.spec as { number?: number } | undefined)?.number ?? ''),
      description: 'The revision number.',
    },
    READY,
    AGE,
  ],
  Event: [
    {
      header: 'LAST SEEN',
      type: 'date',
      jsonPath: '.lastTimestamp',
      priority: 0,
      cell: (o, now) => age(String(o.lastTimestamp), now),
      description: 'When the event last happened.',
    },
    {
      header: 'TYPE',
      type: 'string',
      jsonPath: '.type',
      priority: 0,
      cell: (o) => String(o.type),
      description: 'Normal or Warning.',
    },
    {
      header: 'REASON',
      type: 'string',
      jsonPath: '.reason',
      priority: 0,
      cell: (o) => String(o.reason),
      description: 'A short, machine-readable reason.',
    },
    {
      header: 'OBJECT',
      type: 'string',
      jsonPath: '.involvedObject.name',
      priority: 0,
      cell: (o) => {
        const inv = o.involvedObject as { kind: string; name: string };
        return `${inv.kind.toLowerCase()}/${inv.name}`;
      },
      description: 'The object the event is about.',
    },
    {
      header: 'MESSAGE',
      type: 'string',
      jsonPath: '.message',
      priority: 0,
      cell: (o) => String(o.message),
      description: 'What happened.',
    },
  ],
  Secret: [
    {
      header: 'KEYS',
      type: 'string',
      // A CRD column cannot count: on a cluster it lists the key names instead.
      jsonPath: '.status.keys',
      priority: 0,
      cell: (o) => String(((o.status?.keys as string[] | undefined) ?? []).length),
      description: 'How many keys the secret holds (values are never shown).',
    },
    AGE,
  ],
};

/** The columns after NAME of a kind's table (Event's table has no NAME: see `hasName`). */
export function columnsOf(kind: string): Column[] {
  return COLUMNS[kind] ?? [AGE];
}

/** Whether `kylix get` shows a NAME column first (all kinds but Event, which kubectl shows the same way). */
export function hasName(kind: string): boolean {
  return kind !== 'Event';
}
