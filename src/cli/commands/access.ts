/**
 * `kylix token create|list|revoke` and `kylix audit`: the installation's API tokens and its audit
 * log of mutations (both admin only; see docs/access.md).
 */
import { KylixError, quoteInput } from '../../errors.js';
import {
  type AuditEntry,
  type AuditEntryList,
  ROLES,
  type Role,
  type TokenObject,
  type TokenRequest,
} from '../../resources/access.js';
import { API_VERSION } from '../../resources/meta.js';
import type { ApiClient } from '../client.js';
import { age, serialize, table } from '../output.js';

const TOKENS = `/apis/${API_VERSION}/tokens`;

/** Seconds in a duration such as "90s", "30m", "24h" or "7d". */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  const unit = { s: 1, m: 60, h: 3600, d: 86400 };
  if (!m || Number(m[1]) === 0)
    throw new KylixError(
      'ERR_BAD_REQUEST',
      `${flag} takes a duration such as 30m, 24h or 7d, not ${quoteInput(text)}.`,
    );
  return Number(m[1]) * unit[m[2] as keyof typeof unit];
}

/** `kylix token create`: prints the token once, with how to use it. */
export async function tokenCreateCommand(
  client: ApiClient,
  flags: { role?: string; namespaces: string[]; ttl?: string; name?: string; output?: string },
): Promise<string> {
  const role = (flags.role ?? '') as Role;
  if (!ROLES.includes(role))
    throw new KylixError('ERR_BAD_REQUEST', `--role must be one of ${ROLES.join(', ')}.`);
  const request: TokenRequest = {
    spec: {
      role,
      ...(flags.name ? { description: flags.name } : {}),
      ...(flags.namespaces.length ? { namespaces: flags.namespaces } : {}),
      ...(flags.ttl ? { expirationSeconds: parseDuration(flags.ttl, '--ttl') } : {}),
    },
  };
  const { data } = await client.json<TokenObject>('POST', TOKENS, {
    apiVersion: API_VERSION,
    kind: 'Token',
    ...request,
  });
  if (flags.output === 'json' || flags.output === 'yaml') return serialize(data, flags.output);
  const scope = data.spec.role === 'admin' ? 'every namespace' : data.spec.namespaces.join(', ');
  return [
    `token/${data.metadata.name} created: role ${data.spec.role} in ${scope}${data.spec.expirationTimestamp ? `, expires ${data.spec.expirationTimestamp}` : ''}`,
    'The token (shown once; it cannot be shown again):',
    `  ${data.status.token}`,
    `Use it with: export KYLIX_TOKEN=${data.status.token}`,
  ].join('\n');
}

function state(t: TokenObject): string {
  if (t.status.revoked) return 'Revoked';
  if (t.status.expired) return 'Expired';
  return 'Active';
}

/** `kylix token list`: never a secret (the API has none to give). */
export async function tokenListCommand(client: ApiClient, flags: { output?: string }): Promise<string> {
  const { data } = await client.json<{ items: TokenObject[] }>('GET', TOKENS);
  if (flags.output === 'json' || flags.output === 'yaml') return serialize(data, flags.output);
  if (data.items.length === 0) return 'No tokens.';
  return table(
    ['ID', 'NAME', 'ROLE', 'NAMESPACES', 'STATUS', 'AGE', 'EXPIRES'],
    data.items.map((t) => [
      t.metadata.name,
      t.spec.description || '<none>',
      t.spec.role,
      t.spec.role === 'admin' ? '*' : t.spec.namespaces.join(','),
      state(t),
      age(t.metadata.creationTimestamp),
      t.spec.expirationTimestamp ?? '<never>',
    ]),
  );
}

/** `kylix token revoke ID`. */
export async function tokenRevokeCommand(client: ApiClient, id: string): Promise<string> {
  const { data } = await client.json<TokenObject>('DELETE', `${TOKENS}/${encodeURIComponent(id)}`);
  return `token/${data.metadata.name} revoked`;
}

/** `kylix audit [--since 1h] [-n NS] [--limit N] [-o json]`: the newest entries, oldest first. */
export async function auditCommand(
  client: ApiClient,
  flags: { since?: string; namespace?: string; limit?: string; output?: string },
): Promise<string> {
  const q = new URLSearchParams();
  if (flags.since) q.set('since', flags.since);
  if (flags.namespace) q.set('namespace', flags.namespace);
  if (flags.limit) q.set('limit', flags.limit);
  const query = q.size ? `?${q}` : '';
  const { data } = await client.json<AuditEntryList>('GET', `/apis/${API_VERSION}/audit${query}`);
  if (flags.output === 'json' || flags.output === 'yaml') return serialize(data, flags.output);
  if (data.items.length === 0) return 'No audit entries.';
  const what = (e: AuditEntry) => {
    const ns = e.namespace ? `${e.namespace}/` : '';
    return `${e.resource}${e.name ? ` ${ns}${e.name}` : ns ? ` ${e.namespace}` : ''}`;
  };
  return table(
    ['TIME', 'USER', 'VERB', 'RESOURCE', 'CODE', 'REQUEST'],
    data.items.map((e) => [
      e.time,
      `${e.user.name} (${e.user.id})`,
      e.verb,
      what(e),
      String(e.code),
      e.requestId,
    ]),
  );
}
