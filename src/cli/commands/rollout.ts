/**
 * `kylix rollout history|undo NAME` and `kylix traffic NAME 3=90 4=10`: revisions and how traffic
 * is split between them, the way kubectl rollout and Knative's traffic block work.
 */
import { KylixError } from '../../errors.js';
import { bundleDigestOf, type FunctionSpec } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import type { ApiClient } from '../client.js';
import { age, table } from '../output.js';

interface RevSpec {
  number: number;
  bundle?: FunctionSpec['bundle'];
  code?: string;
  [k: string]: unknown;
}

/** Fields of a Revision's spec that are identity, not template. */
const IDENTITY = ['functionName', 'number', 'generation', 'templateHash'];

async function revisionsOf(client: ApiClient, name: string): Promise<KObject[]> {
  const list = await client.list('revisions', { selector: `kylix.dev/function=${name}` });
  return list.sort((a, b) => (a.spec as unknown as RevSpec).number - (b.spec as unknown as RevSpec).number);
}

/** The revisions of a function, with their share of traffic. */
export async function historyCommand(client: ApiClient, name: string): Promise<string> {
  const fn = await client.get('functions', name);
  const traffic =
    (fn.status?.traffic as { revision: number; percent: number; tag?: string }[] | undefined) ?? [];
  const rows = (await revisionsOf(client, name)).map((r) => {
    const s = r.spec as unknown as RevSpec;
    const shares = traffic.filter((t) => t.revision === s.number);
    const ready = r.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
    return [
      String(s.number),
      (bundleDigestOf(s) ?? (s.code ? 'inline code' : '')).slice(0, 19),
      ready,
      shares.length ? `${shares.reduce((n, t) => n + t.percent, 0)}%` : '',
      shares.flatMap((t) => (t.tag ? [t.tag] : [])).join(','),
      age(r.metadata.creationTimestamp),
    ];
  });
  return table(['REVISION', 'BUNDLE', 'READY', 'TRAFFIC', 'TAGS', 'AGE'], rows);
}

/**
 * Rolls back to an earlier revision's code and settings (the one before the newest, or
 * --to-revision N), as a new revision — as kubectl rollout undo does.
 */
export async function undoCommand(client: ApiClient, name: string, toRevision?: number): Promise<string> {
  const fn = await client.get('functions', name);
  const revisions = await revisionsOf(client, name);
  const target =
    toRevision === undefined
      ? revisions.at(-2)
      : revisions.find((r) => (r.spec as unknown as RevSpec).number === toRevision);
  if (!target) {
    throw new KylixError(
      'ERR_NOT_FOUND',
      toRevision === undefined
        ? `${name} has no earlier revision to roll back to.`
        : `${name} has no revision ${toRevision}; see kylix rollout history ${name}.`,
    );
  }
  const template: Record<string, unknown> = { ...(target.spec as object) };
  for (const k of IDENTITY) delete template[k];
  const current = fn.spec as Record<string, unknown>;
  const spec = {
    ...template,
    ...(current.traffic ? { traffic: current.traffic } : {}),
    revisionHistoryLimit: current.revisionHistoryLimit,
  };
  await client.json('PUT', client.path('functions', name), {
    apiVersion: fn.apiVersion,
    kind: fn.kind,
    metadata: {
      name,
      resourceVersion: fn.metadata.resourceVersion,
      labels: fn.metadata.labels,
      annotations: fn.metadata.annotations,
    },
    spec,
  });
  return `function/${name} rolled back to the code and settings of revision ${(target.spec as unknown as RevSpec).number}`;
}

/**
 * Parses "3=90 4=10 latest=0" plus "--tag 4=canary" into spec.traffic entries.
 * `latest` follows the newest ready revision.
 */
export function parseTraffic(args: string[], tags: string[] = []): Record<string, unknown>[] {
  const tagOf = new Map<string, string>();
  for (const t of tags) {
    const [rev, tag] = t.split('=');
    if (!rev || !tag)
      throw new KylixError('ERR_BAD_REQUEST', `--tag ${t} is not REVISION=TAG (e.g. --tag 4=canary).`);
    tagOf.set(rev, tag);
  }
  const entries = args.map((a) => {
    const m = /^(\d+|latest)=(\d+)%?$/.exec(a);
    if (!m) throw new KylixError('ERR_BAD_REQUEST', `"${a}" is not REVISION=PERCENT (e.g. 3=90, latest=10).`);
    const [, rev, percent] = m as unknown as [string, string, string];
    const tag = tagOf.get(rev);
    tagOf.delete(rev);
    return {
      ...(rev === 'latest' ? { latestRevision: true } : { revision: Number(rev) }),
      percent: Number(percent),
      ...(tag ? { tag } : {}),
    };
  });
  // A tag for a revision that takes no traffic: it is still addressable, at 0%.
  for (const [rev, tag] of tagOf)
    entries.push({
      ...(rev === 'latest' ? { latestRevision: true } : { revision: Number(rev) }),
      percent: 0,
      tag,
    });
  const total = entries.reduce((n, e) => n + (e.percent as number), 0);
  if (total !== 100)
    throw new KylixError('ERR_BAD_REQUEST', `The percents add up to ${total}; they must add up to 100.`);
  return entries;
}

/** Sets a function's traffic split. */
export async function trafficCommand(
  client: ApiClient,
  name: string,
  args: string[],
  tags: string[],
): Promise<string> {
  const traffic = args.length === 0 && tags.length === 0 ? null : parseTraffic(args, tags);
  // A revision that does not exist is refused here, before the function is changed.
  const named = (traffic ?? []).flatMap((t) => (typeof t.revision === 'number' ? [t.revision] : []));
  if (named.length > 0) {
    const have = new Set(
      (await client.list('revisions', { selector: `kylix.dev/function=${name}` })).map(
        (r) => (r.spec as { number: number }).number,
      ),
    );
    const missing = [...new Set(named)].filter((n) => !have.has(n));
    if (missing.length > 0)
      throw new KylixError(
        'ERR_NOT_FOUND',
        `${name} has no revision ${missing.join(', ')}${have.size ? ` (it has ${[...have].sort((a, b) => a - b).join(', ')})` : ''}. See them with: kylix rollout history ${name}`,
      );
  }
  await client.json(
    'PATCH',
    client.path('functions', name),
    { spec: { traffic } },
    'application/merge-patch+json',
  );
  return traffic
    ? `function/${name} traffic: ${traffic.map((t) => `${t.revision ?? 'latest'}=${t.percent}%${t.tag ? ` (${t.tag})` : ''}`).join(' ')}`
    : `function/${name} traffic: all to the latest revision`;
}
