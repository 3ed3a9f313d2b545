/**
 * `kylix invoke NAME [--path P] [--data D]`: calls a function through the control API's proxy,
 * without knowing its route, and prints the response body.
 */
import { readFileSync } from 'node:fs';
import { KylixError } from '../../errors.js';
import type { ApiClient } from '../client.js';

/** Flags of invoke. */
export interface InvokeFlags {
  path?: string;
  data?: string;
  method?: string;
  header?: string[];
  include?: boolean;
}

/** Calls the function; resolves with the exit status (0 for a 2xx/3xx answer). */
export async function invokeCommand(
  client: ApiClient,
  name: string,
  flags: InvokeFlags,
  write: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const path = flags.path ?? '/';
  if (!path.startsWith('/'))
    throw new KylixError('ERR_BAD_REQUEST', `--path must start with "/" (got "${path}").`);
  const body =
    flags.data === undefined
      ? undefined
      : flags.data.startsWith('@')
        ? readFileSync(flags.data.slice(1))
        : flags.data;
  const method = (flags.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  for (const h of flags.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new KylixError('ERR_BAD_REQUEST', `-H "${h}" is not "Name: value".`);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  await client.get('functions', name);
  const res = await client.raw(method, `${client.path('functions', name)}/proxy${path}`, { body, headers });
  if (flags.include) {
    write(`HTTP ${res.status} ${res.statusText}\n`);
    for (const [k, v] of res.headers) write(`${k}: ${v}\n`);
    write('\n');
  }
  const text = await res.text();
  write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  if (res.status >= 400) {
    console.error(
      `kylix invoke: ${name} answered ${res.status} (request id ${res.headers.get('kylix-request-id') ?? '?'})`,
    );
    return 1;
  }
  return 0;
}
