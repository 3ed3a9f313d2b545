/**
 * `kylix describe KIND NAME`: spec, status, conditions, revisions and recent events, as kubectl
 * describe shows them.
 */
import { stringify as toYaml } from 'yaml';
import { KylixError } from '../../errors.js';
import { BINDING_RESOURCE_KINDS } from '../../resources/binding-kinds.js';
import { bundleDigestOf, type FunctionSpec, findKind, KINDS } from '../../resources/kinds.js';
import type { ApiClient } from '../client.js';
import { age, table } from '../output.js';

function indent(text: string, n = 2): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `${' '.repeat(n)}${l}`)
    .join('\n');
}

/** Runs describe; returns the text to print. */
export async function describeCommand(client: ApiClient, kindName: string, name: string): Promise<string> {
  const info = findKind(kindName);
  if (!info) throw new KylixError('ERR_NOT_FOUND', `There is no resource type "${kindName}".`);
  const o = await client.get(info.plural, name);
  const { conditions, ...status } = o.status ?? {};
  const lines = [
    `Name:         ${o.metadata.name}`,
    `Namespace:    ${o.metadata.namespace}`,
    `Kind:         ${o.kind}`,
    `Labels:       ${
      Object.entries(o.metadata.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '<none>'
    }`,
    `Created:      ${o.metadata.creationTimestamp} (${age(o.metadata.creationTimestamp)} ago)`,
    `Generation:   ${o.metadata.generation}`,
    'Spec:',
    indent(toYaml(o.spec ?? {})),
  ];
  if (Object.keys(status).length > 0) lines.push('Status:', indent(toYaml(status)));
  if (conditions?.length) {
    lines.push(
      'Conditions:',
      indent(
        table(
          ['TYPE', 'STATUS', 'REASON', 'MESSAGE'],
          conditions.map((c) => [c.type, c.status, c.reason, c.message]),
        ),
      ),
    );
  }
  if (info.kind === 'Function') {
    const revisions = await client.list('revisions', { selector: `kylix.dev/function=${name}` });
    revisions.sort(
      (a, b) => Number((a.spec as { number: number }).number) - Number((b.spec as { number: number }).number),
    );
    const serving = o.status?.latestReadyRevision;
    lines.push(
      'Revisions:',
      revisions.length === 0
        ? '  <none>'
        : indent(
            table(
              ['REVISION', 'BUNDLE', 'READY', 'SERVING', 'AGE'],
              revisions.map((r) => {
                const s = r.spec as { number: number; bundle?: FunctionSpec['bundle']; code?: string };
                const ready = r.status?.conditions?.find((c) => c.type === 'Ready');
                return [
                  String(s.number),
                  (bundleDigestOf(s) ?? (s.code ? 'inline code' : '')).slice(0, 19),
                  ready?.status ?? 'Unknown',
                  s.number === serving ? 'yes' : '',
                  age(r.metadata.creationTimestamp),
                ];
              }),
            ),
          ),
    );
  }
  if (info.kind === 'Function') {
    const bindings = Object.entries(
      (o.spec as { bindings?: Record<string, Record<string, string>> }).bindings ?? {},
    );
    const plurals: Record<string, string> = Object.fromEntries(
      Object.entries(BINDING_RESOURCE_KINDS).map(([binding, kind]) => [binding, KINDS[kind]!.plural]),
    );
    const rows = await Promise.all(
      bindings.map(async ([name, b]) => {
        const kind = Object.keys(b).find((k) => k !== 'key') ?? '';
        const resource = b[kind] ?? '';
        if (kind === 'secret') {
          const secret = await client.get('secrets', resource).catch(() => undefined);
          return [name, kind, resource, '-', secret ? 'present' : 'MISSING'];
        }
        const health = await client
          .json<{ backend: string; ok: boolean; message: string }>(
            'GET',
            `${client.path(plurals[kind] ?? kind, resource)}/health`,
          )
          .then((r) => r.data)
          .catch((err: Error) => ({ backend: '?', ok: false, message: err.message }));
        return [name, kind, resource, health.backend, health.ok ? 'ok' : `FAILING: ${health.message}`];
      }),
    );
    lines.push(
      'Bindings:',
      rows.length === 0 ? '  <none>' : indent(table(['ENV', 'KIND', 'RESOURCE', 'BACKEND', 'HEALTH'], rows)),
    );
  }
  if (info.kind === 'Function') {
    const { data } = await client.json<{
      revisions: {
        revision: number;
        instances: number;
        inFlight: number;
        coldStarts: number;
        coldStartP50Ms: number | null;
        coldStartP99Ms: number | null;
      }[];
    }>('GET', `${client.path('functions', name)}/stats`);
    const ms = (v: number | null) => (v === null ? '-' : `${v}ms`);
    lines.push(
      'Instances:',
      data.revisions.length === 0
        ? '  <none>'
        : indent(
            table(
              ['REVISION', 'INSTANCES', 'IN FLIGHT', 'COLD STARTS', 'COLD P50', 'COLD P99'],
              data.revisions.map((r) => [
                String(r.revision),
                String(r.instances),
                String(r.inFlight),
                String(r.coldStarts),
                ms(r.coldStartP50Ms),
                ms(r.coldStartP99Ms),
              ]),
            ),
          ),
    );
  }
  const events = await client.list('events', {
    selector: `kylix.dev/kind=${info.kind},kylix.dev/name=${name}`,
  });
  events.sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));
  lines.push(
    'Events:',
    events.length === 0
      ? '  <none>'
      : indent(
          table(
            ['TYPE', 'REASON', 'AGE', 'MESSAGE'],
            events
              .slice(-15)
              .map((e) => [
                String(e.type),
                String(e.reason),
                age(String(e.lastTimestamp)),
                String(e.message),
              ]),
          ),
        ),
  );
  return lines.join('\n');
}
