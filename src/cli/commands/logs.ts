/**
 * `kylix logs NAME [-f] [--since 10m] [--tail N] [--level warn] [--revision 2] [-o json]`: a
 * function's console output (and platform notes, one line per invocation), optionally streamed.
 * On a fleet the node answers with every node's lines, merged by time, each naming its node.
 * The node filters; the CLI turns a relative --since into a time and prints lines or JSON.
 */
import { KylixError } from '../../errors.js';
import type { LogEntry } from '../../resources/api-types.js';
import type { ApiClient } from '../client.js';

/** One log line for a terminal: time, level, revision, request id (and node, on a fleet), message. */
export function formatLogEntry(e: LogEntry): string {
  const who = e.source === 'platform' ? 'kylix' : `rev ${e.revision ?? '?'}`;
  const node = e.node ? ` @${e.node}` : '';
  return `${e.time} ${e.level.toUpperCase().padEnd(5)} [${who}${e.requestId ? ` ${e.requestId}` : ''}${node}] ${e.message}`;
}

/** Units of a relative --since ("90s", "10m", "1h30m", "2d"). */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The time a --since value names: a duration back from `now`, or an RFC 3339 time. */
export function sinceTime(value: string, now = Date.now()): string {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === value) {
    const ms = parts.reduce((sum, p) => sum + Number(p[1]) * (UNIT_MS[p[2] as string] ?? 0), 0);
    return new Date(now - ms).toISOString();
  }
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(t)) return new Date(t).toISOString();
  throw new KylixError(
    'ERR_BAD_REQUEST',
    `--since "${value}" is neither a duration (30s, 10m, 1h30m, 2d) nor a time (2026-01-02T15:04:05Z).`,
  );
}

/** The flags of `kylix logs`. */
export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  since?: string;
  level?: string;
  revision?: string;
  output?: string;
}

/** Prints the log; with follow, keeps printing until the server closes or Ctrl-C. */
export async function logsCommand(
  client: ApiClient,
  name: string,
  flags: LogsFlags,
  write: (line: string) => void = (l) => console.log(l),
  signal?: AbortSignal,
): Promise<void> {
  await client.get('functions', name);
  const params = new URLSearchParams({ tailLines: String(Number(flags.tail ?? 100)) });
  if (flags.follow) params.set('follow', 'true');
  if (flags.since) params.set('sinceTime', sinceTime(flags.since));
  if (flags.level) params.set('level', flags.level);
  if (flags.revision) params.set('revision', flags.revision);
  const json = flags.output === 'json';
  const query = `?${params}`;
  const res = await client.raw('GET', `${client.path('functions', name)}/log${query}`, { signal });
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl = buffered.indexOf('\n');
      while (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line) write(json ? line : formatLogEntry(JSON.parse(line) as LogEntry));
        nl = buffered.indexOf('\n');
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}
