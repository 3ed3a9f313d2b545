/**
 * `kylix logs NAME [-f]`: a function's console output (and platform notes), optionally streamed.
 */
import type { LogEntry } from '../../resources/api-types.js';
import type { ApiClient } from '../client.js';

/** One log line for a terminal: time, level, revision, request id, message. */
export function formatLogEntry(e: LogEntry): string {
  const who = e.source === 'platform' ? 'kylix' : `rev ${e.revision ?? '?'}`;
  return `${e.time} ${e.level.toUpperCase().padEnd(5)} [${who}${e.requestId ? ` ${e.requestId}` : ''}] ${e.message}`;
}

/** Prints the log; with follow, keeps printing until the server closes or Ctrl-C. */
export async function logsCommand(
  client: ApiClient,
  name: string,
  flags: { follow?: boolean; tail?: string },
  write: (line: string) => void = (l) => console.log(l),
  signal?: AbortSignal,
): Promise<void> {
  await client.get('functions', name);
  const query = `?tailLines=${Number(flags.tail ?? 100)}${flags.follow ? '&follow=true' : ''}`;
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
        if (line) write(formatLogEntry(JSON.parse(line) as LogEntry));
        nl = buffered.indexOf('\n');
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}
