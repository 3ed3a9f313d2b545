/**
 * `kylix get KIND [NAME]`: kubectl-style tables, or -o yaml|json|wide.
 */
import { KylixError } from '../../errors.js';
import { bundleDigestOf, type FunctionSpec, findKind } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import type { ApiClient } from '../client.js';
import { age, serialize, table } from '../output.js';

/** Flags of get. */
export interface GetFlags {
  output?: string;
  selector?: string;
  allNamespaces?: boolean;
}

function ready(o: KObject): string {
  const c = o.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? c.status : 'Unknown';
}

/** The columns of each kind's table. */
function columns(kind: string, wide: boolean): { headers: string[]; row: (o: KObject) => string[] } {
  if (kind === 'Function') {
    const headers = ['NAME', 'REVISION', 'ROUTES', 'READY', 'AGE'];
    return {
      headers: wide ? [...headers, 'REASON', 'BUNDLE'] : headers,
      row: (o) => {
        const spec = o.spec as {
          routes?: { path: string; host?: string; methods?: string[] }[];
          bundle?: FunctionSpec['bundle'];
          code?: string;
        };
        const routes =
          (spec.routes ?? [])
            .map((r) => `${r.methods ? `${r.methods.join(',')} ` : ''}${r.host ?? ''}${r.path}`)
            .join(',') || '<none>';
        const base = [
          o.metadata.name,
          String(o.status?.latestReadyRevision ?? '<none>'),
          routes,
          ready(o),
          age(o.metadata.creationTimestamp),
        ];
        const reason = o.status?.conditions?.find((x) => x.type === 'Ready')?.reason ?? '';
        return wide
          ? [...base, reason, (bundleDigestOf(spec) ?? (spec.code ? 'inline code' : '')).slice(0, 19)]
          : base;
      },
    };
  }
  if (kind === 'Revision') {
    return {
      headers: ['NAME', 'FUNCTION', 'REVISION', 'READY', 'AGE'],
      row: (o) => {
        const s = o.spec as { functionName?: string; number?: number };
        return [
          o.metadata.name,
          s.functionName ?? '',
          String(s.number ?? ''),
          ready(o),
          age(o.metadata.creationTimestamp),
        ];
      },
    };
  }
  if (kind === 'Event') {
    return {
      headers: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
      row: (o) => {
        const inv = o.involvedObject as { kind: string; name: string };
        return [
          age(String(o.lastTimestamp)),
          String(o.type),
          String(o.reason),
          `${inv.kind.toLowerCase()}/${inv.name}`,
          String(o.message),
        ];
      },
    };
  }
  if (kind === 'Secret') {
    return {
      headers: ['NAME', 'KEYS', 'AGE'],
      row: (o) => [
        o.metadata.name,
        String(((o.status?.keys as string[]) ?? []).length),
        age(o.metadata.creationTimestamp),
      ],
    };
  }
  return { headers: ['NAME', 'AGE'], row: (o) => [o.metadata.name, age(o.metadata.creationTimestamp)] };
}

/** Runs get; returns the text to print. */
export async function getCommand(
  client: ApiClient,
  kindName: string,
  name: string | undefined,
  flags: GetFlags,
): Promise<string> {
  const info = findKind(kindName);
  if (!info)
    throw new KylixError(
      'ERR_NOT_FOUND',
      `There is no resource type "${kindName}". Try: functions, databases, keyvalues, queues, buckets, secrets, revisions, events.`,
    );
  const format = flags.output;
  if (format && !['yaml', 'json', 'wide', 'name'].includes(format))
    throw new KylixError('ERR_BAD_REQUEST', `-o ${format} is not supported; use yaml, json, wide or name.`);
  let items: KObject[];
  if (name) items = [await client.get(info.plural, name)];
  else
    items = await client.list(info.plural, { allNamespaces: flags.allNamespaces, selector: flags.selector });
  if (info.kind === 'Event')
    items.sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));

  if (format === 'yaml' || format === 'json') {
    const value = name ? items[0] : { apiVersion: 'kylix.dev/v1', kind: `${info.kind}List`, items };
    return serialize(value, format);
  }
  if (format === 'name') return items.map((o) => `${info.singular}/${o.metadata.name}`).join('\n');
  if (items.length === 0)
    return `No ${info.plural} found in ${flags.allNamespaces ? 'any namespace' : `namespace ${client.config.namespace}`}.`;
  const cols = columns(info.kind, format === 'wide');
  const headers = flags.allNamespaces ? ['NAMESPACE', ...cols.headers] : cols.headers;
  return table(
    headers,
    items.map((o) => (flags.allNamespaces ? [o.metadata.namespace, ...cols.row(o)] : cols.row(o))),
  );
}
