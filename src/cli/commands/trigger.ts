/**
 * `kylix trigger scheduled NAME` and `kylix trigger queue NAME --message JSON …`: run a function's
 * scheduled() or queue() handler by hand, now, and say what it did (nothing is scheduled, sent to
 * or taken from a queue).
 */
import { KylixError } from '../../errors.js';
import type { ApiClient } from '../client.js';

/** What the server answers: the handler's own outcome. */
interface TriggerResult {
  result: {
    ok?: boolean;
    error?: string;
    acked?: string[];
    retried?: { leaseId: string }[];
    failed?: boolean;
  };
}

/** Parses a --message value: JSON when it is JSON, else the text itself. */
function bodyOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Runs the handler; `ok` is false when it threw. */
export async function triggerCommand(
  client: ApiClient,
  kind: string,
  name: string,
  flags: { cron?: string; message?: string[] },
): Promise<{ text: string; ok: boolean }> {
  let body: Record<string, unknown>;
  if (kind === 'scheduled') body = { kind, ...(flags.cron ? { cron: flags.cron } : {}) };
  else if (kind === 'queue') {
    const messages = (flags.message ?? []).map(bodyOf);
    if (messages.length === 0)
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `Give the batch's messages: kylix trigger queue ${name} --message '{"id":1}' [--message …]`,
      );
    body = { kind, messages };
  } else
    throw new KylixError(
      'ERR_BAD_REQUEST',
      'Usage: kylix trigger scheduled NAME | queue NAME --message JSON …',
    );
  const { data } = await client.json<TriggerResult>(
    'POST',
    `${client.path('functions', name)}/trigger`,
    body,
  );
  const r = data.result;
  if (kind === 'scheduled')
    return r.ok
      ? { text: `scheduled() of ${name} ran`, ok: true }
      : {
          text: `scheduled() of ${name} failed: ${r.error ?? 'it threw'} (see kylix logs ${name})`,
          ok: false,
        };
  const retried = r.retried?.length ?? 0;
  const acked = r.acked?.length ?? 0;
  const summary = `${acked} acked, ${retried} retried`;
  return r.failed
    ? {
        text: `queue() of ${name} threw: ${r.error ?? 'an error'} (${summary}; see kylix logs ${name})`,
        ok: false,
      }
    : { text: `queue() of ${name} ran: ${summary}`, ok: true };
}
