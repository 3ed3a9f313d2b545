/**
 * The arguments of queue(batch) and scheduled(event), shaped like Workers': a MessageBatch whose
 * messages can be acked or retried one by one or all at once, and a ScheduledController. The
 * batch records what the handler decided, for the supervisor's consumer loop.
 */
import { decodeMessage } from './bindings/queue.js';
import { MAX_DELAY_SECONDS, MAX_ERROR_TEXT } from './protocol.js';

/** A handler's error as the answer carries it: `Name: message`, at most MAX_ERROR_TEXT characters. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}… (cut)` : text;
}

/** Checks a retry's delay where the handler asked for it, so the mistake is thrown at its line. */
function checkDelay(delaySeconds: unknown): void {
  if (
    delaySeconds !== undefined &&
    !(typeof delaySeconds === 'number' && delaySeconds >= 0 && delaySeconds <= MAX_DELAY_SECONDS)
  )
    throw new RangeError(
      `retry({ delaySeconds }) takes a number of seconds from 0 to ${MAX_DELAY_SECONDS}, not ${typeof delaySeconds === 'number' ? delaySeconds : typeof delaySeconds}.`,
    );
}

/** One delivery as the supervisor sends it. */
export interface WireDelivery {
  leaseId: string;
  id: string;
  body: Uint8Array;
  contentType: 'json' | 'text' | 'bytes' | 'v8';
  attempts: number;
  timestamp: number;
}

/** What the handler decided, returned to the supervisor. */
export interface WireOutcome {
  acked: string[];
  retried: { leaseId: string; delaySeconds?: number }[];
  failed: boolean;
  error?: string;
}

/** Builds a MessageBatch for `queue`; `outcome(failed)` reports the decisions. */
export function messageBatch(queue: string, deliveries: WireDelivery[]) {
  const acked = new Set<string>();
  const retried = new Map<string, number | undefined>();
  // The last call for a message wins, as on Workers.
  const ack = (leaseId: string) => {
    retried.delete(leaseId);
    acked.add(leaseId);
  };
  const retry = (leaseId: string, delaySeconds?: number) => {
    checkDelay(delaySeconds);
    acked.delete(leaseId);
    retried.set(leaseId, delaySeconds);
  };
  const messages = Object.freeze(
    deliveries.map((d) =>
      Object.freeze({
        id: d.id,
        timestamp: new Date(d.timestamp),
        body: decodeMessage(d.body, d.contentType),
        attempts: d.attempts,
        ack: () => ack(d.leaseId),
        retry: (options: { delaySeconds?: number } = {}) => retry(d.leaseId, options.delaySeconds),
      }),
    ),
  );
  const batch = Object.freeze({
    queue,
    messages,
    ackAll: () => {
      for (const d of deliveries) ack(d.leaseId);
    },
    retryAll: (options: { delaySeconds?: number } = {}) => {
      checkDelay(options.delaySeconds);
      for (const d of deliveries) retry(d.leaseId, options.delaySeconds);
    },
  });
  const outcome = (error?: unknown): WireOutcome => ({
    acked: [...acked],
    retried: [...retried].map(([leaseId, delaySeconds]) => ({
      leaseId,
      ...(delaySeconds !== undefined ? { delaySeconds } : {}),
    })),
    failed: error !== undefined,
    ...(error !== undefined ? { error: errorText(error) } : {}),
  });
  return { batch, outcome };
}

/** The event for `scheduled`, as Workers' ScheduledController. */
export function scheduledEvent(e: { cron: string; scheduledTime: number }) {
  return Object.freeze({ type: 'scheduled', cron: e.cron, scheduledTime: e.scheduledTime, noRetry() {} });
}
