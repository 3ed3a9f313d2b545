/**
 * The data behind resources, from the terminal: `kylix kv`, `kylix queue`, `kylix bucket` and
 * `kylix secret set` (`kylix sql` is commands/sql.ts).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { KylixError } from '../../errors.js';
import type { ApiClient } from '../client.js';
import { table } from '../output.js';

const enc = encodeURIComponent;
const keyPath = (key: string) => key.split('/').map(enc).join('/');

/** `kylix kv get|put|delete|list NAME [KEY] [VALUE]`. */
export async function kvCommand(
  client: ApiClient,
  action: string,
  name: string,
  key: string | undefined,
  value: string | undefined,
  flags: { prefix?: string; ttl?: string },
): Promise<string> {
  const base = `${client.path('keyvalues', name)}/keys`;
  const need = () => {
    if (!key) throw new KylixError('ERR_BAD_REQUEST', `kylix kv ${action} needs a key.`);
    return key;
  };
  if (action === 'list') {
    const { data } = await client.json<{ keys: { name: string; expiration?: number }[] }>(
      'GET',
      `${base}?${new URLSearchParams(flags.prefix ? { prefix: flags.prefix } : {})}`,
    );
    return data.keys.length === 0
      ? 'No keys.'
      : table(
          ['KEY', 'EXPIRES'],
          data.keys.map((k) => [k.name, k.expiration ? new Date(k.expiration * 1000).toISOString() : '']),
        );
  }
  if (action === 'get') return (await client.raw('GET', `${base}/${keyPath(need())}`)).text();
  if (action === 'put') {
    if (value === undefined)
      throw new KylixError('ERR_BAD_REQUEST', 'kylix kv put NAME KEY VALUE (or @file).');
    const body = value.startsWith('@') ? readFileSync(value.slice(1)) : value;
    await client.raw('PUT', `${base}/${keyPath(need())}${flags.ttl ? `?ttl=${Number(flags.ttl)}` : ''}`, {
      body,
    });
    return `${name}/${key} stored`;
  }
  if (action === 'delete') {
    await client.raw('DELETE', `${base}/${keyPath(need())}`);
    return `${name}/${key} deleted`;
  }
  throw new KylixError('ERR_BAD_REQUEST', `Unknown kv action "${action}": use get, put, delete or list.`);
}

/** `kylix queue send|stats|dlq list|dlq redrive`. */
export async function queueCommand(
  client: ApiClient,
  args: string[],
  flags: { delay?: string; to?: string },
): Promise<string> {
  const [action, a, b] = args;
  if (action === 'send' && a) {
    let body: unknown = b ?? null;
    try {
      body = b === undefined ? null : JSON.parse(b);
    } catch {
      // not JSON: send it as a string
    }
    await client.json('POST', `${client.path('queues', a)}/messages`, {
      body,
      ...(flags.delay ? { delaySeconds: Number(flags.delay) } : {}),
    });
    return `sent to ${a}`;
  }
  if (action === 'stats' && a) {
    const { data } = await client.json<{ ready: number; inFlight: number; delayed: number }>(
      'GET',
      `${client.path('queues', a)}/stats`,
    );
    return table(
      ['QUEUE', 'READY', 'IN FLIGHT', 'DELAYED'],
      [[a, String(data.ready), String(data.inFlight), String(data.delayed)]],
    );
  }
  if (action === 'dlq' && a === 'list' && b) {
    const { data } = await client.json<{
      messages: { id: string; attempts: number; timestamp: number; body: string }[];
    }>('GET', `${client.path('queues', b)}/messages`);
    return data.messages.length === 0
      ? `${b} is empty.`
      : table(
          ['ID', 'SENT', 'BODY'],
          data.messages.map((m) => [m.id, new Date(m.timestamp).toISOString(), m.body.slice(0, 80)]),
        );
  }
  if (action === 'dlq' && a === 'redrive' && b) {
    if (!flags.to) throw new KylixError('ERR_BAD_REQUEST', 'kylix queue dlq redrive DLQ --to QUEUE');
    const { data } = await client.json<{ moved: number }>('POST', `${client.path('queues', b)}/redrive`, {
      to: flags.to,
    });
    return `moved ${data.moved} message${data.moved === 1 ? '' : 's'} from ${b} to ${flags.to}`;
  }
  throw new KylixError(
    'ERR_BAD_REQUEST',
    'Usage: kylix queue send QUEUE JSON | stats QUEUE | dlq list DLQ | dlq redrive DLQ --to QUEUE',
  );
}

/** `kylix bucket ls NAME[/prefix]` and `kylix bucket cp SRC DST` (one side "bucket:NAME/key"). */
export async function bucketCommand(
  client: ApiClient,
  action: string,
  a: string,
  b: string | undefined,
): Promise<string> {
  const parse = (s: string) => {
    const m = /^bucket:([^/]+)\/(.+)$/.exec(s);
    return m ? { bucket: m[1]!, key: m[2]! } : undefined;
  };
  if (action === 'ls') {
    const [bucket, ...rest] = a.split('/');
    const prefix = rest.join('/');
    const { data } = await client.json<{
      objects: { key: string; size: number; uploaded: string }[];
      delimitedPrefixes: string[];
    }>(
      'GET',
      `${client.path('buckets', bucket ?? a)}/objects?${new URLSearchParams({ delimiter: '/', ...(prefix ? { prefix: prefix.endsWith('/') ? prefix : `${prefix}/` } : {}) })}`,
    );
    const rows = [
      ...data.delimitedPrefixes.map((p) => [p, '', 'PRE']),
      ...data.objects.map((o) => [o.key, String(o.size), o.uploaded]),
    ];
    return rows.length === 0 ? 'No objects.' : table(['KEY', 'SIZE', 'UPLOADED'], rows);
  }
  if (action === 'cp' && b) {
    const src = parse(a);
    const dst = parse(b);
    if (dst && !src) {
      const res = await client.raw(
        'PUT',
        `${client.path('buckets', dst.bucket)}/objects/${keyPath(dst.key.endsWith('/') ? `${dst.key}${basename(a)}` : dst.key)}`,
        { body: readFileSync(a) },
      );
      const o = (await res.json()) as { key: string; size: number; etag: string };
      return `uploaded ${o.key} (${o.size} bytes, etag ${o.etag})`;
    }
    if (src && !dst) {
      const res = await client.raw(
        'GET',
        `${client.path('buckets', src.bucket)}/objects/${keyPath(src.key)}`,
      );
      if (b === '-') {
        // To stdout, streamed, and nothing else there: `kylix bucket cp bucket:b/k - | jq`.
        for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>)
          if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
        return '';
      }
      const data = Buffer.from(await res.arrayBuffer());
      writeFileSync(b, data);
      return `downloaded ${src.key} (${data.length} bytes) to ${b}`;
    }
  }
  if (action === 'rm') {
    const target = parse(a);
    if (!target) throw new KylixError('ERR_BAD_REQUEST', 'Usage: kylix bucket rm bucket:NAME/key');
    await client.raw('DELETE', `${client.path('buckets', target.bucket)}/objects/${keyPath(target.key)}`);
    return `deleted ${target.key} from ${target.bucket}`;
  }
  throw new KylixError(
    'ERR_BAD_REQUEST',
    'Usage: kylix bucket ls NAME[/prefix] | cp FILE bucket:NAME/key | cp bucket:NAME/key FILE|- | rm bucket:NAME/key',
  );
}

/** `kylix secret set NAME --from-literal k=v … --from-file [k=]path …`: applies a Secret. */
export async function secretSetCommand(
  client: ApiClient,
  name: string,
  flags: { fromLiteral?: string[]; fromFile?: string[] },
): Promise<string> {
  const stringData: Record<string, string> = {};
  for (const l of flags.fromLiteral ?? []) {
    const i = l.indexOf('=');
    if (i <= 0)
      throw new KylixError('ERR_BAD_REQUEST', `--from-literal takes KEY=VALUE (got "${l.split('=')[0]}=…").`);
    stringData[l.slice(0, i)] = l.slice(i + 1);
  }
  for (const f of flags.fromFile ?? []) {
    const i = f.indexOf('=');
    const [k, path] = i > 0 ? [f.slice(0, i), f.slice(i + 1)] : [basename(f), f];
    stringData[k] = readFileSync(path, 'utf8');
  }
  if (Object.keys(stringData).length === 0)
    throw new KylixError(
      'ERR_BAD_REQUEST',
      'Give at least one --from-literal KEY=VALUE or --from-file PATH.',
    );
  const { headers } = await client.json(
    'PATCH',
    client.path('secrets', name),
    { apiVersion: 'kylix.dev/v1', kind: 'Secret', metadata: { name }, spec: { stringData } },
    'application/apply-patch+yaml',
  );
  // Never echo values back: only the key names.
  return `secret/${name} ${headers.get('kylix-apply-result') ?? 'configured'} (keys: ${Object.keys(stringData).sort().join(', ')})`;
}
