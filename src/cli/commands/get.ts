/**
 * `kylix get KIND [NAME]`: kubectl-style tables, or -o yaml|json|wide.
 */
import { KylixError } from '../../errors.js';
import { columnsOf, hasName } from '../../kubernetes/columns.js';
import { findKind } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import type { ApiClient } from '../client.js';
import { serialize, table } from '../output.js';

/** Flags of get. */
export interface GetFlags {
  output?: string;
  selector?: string;
  allNamespaces?: boolean;
}

/** The columns of each kind's table: the ones the control API's Table responses and the CRDs carry. */
function columns(kind: string, wide: boolean): { headers: string[]; row: (o: KObject) => string[] } {
  const cols = columnsOf(kind).filter((c) => wide || c.priority === 0);
  const name = hasName(kind);
  const now = Date.now();
  return {
    headers: [...(name ? ['NAME'] : []), ...cols.map((c) => c.header)],
    row: (o) => [...(name ? [o.metadata.name] : []), ...cols.map((c) => c.cell(o, now))],
  };
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
