/**
 * What an instance answered an event with, checked before the supervisor acts on it: the instance's
 * process is hostile, so its answer is JSON of any shape. A retry delay past the 12-hour limit
 * would park its message in the queue for good (1e9 s is 31 years), one that is not a number would
 * reach the provider's arithmetic, and an error text of megabytes would reach the function's log.
 * A malformed answer throws: the batch or tick counts as failed, as if the handler had thrown.
 */
import { MAX_DELAY_SECONDS, MAX_ERROR_TEXT } from '../sandbox/protocol.js';
import type { BatchOutcome } from './queue-consumer.js';

/** The answer to a scheduled tick. */
export interface ScheduledAnswer {
  ok: boolean;
  error?: string;
}

/** The handler's decisions on a queue batch; throws if the answer is not one. */
export function batchOutcome(answer: unknown): BatchOutcome {
  const a = record(answer, 'queue');
  const { acked, retried, failed } = a;
  if (!Array.isArray(acked) || !acked.every((id) => typeof id === 'string'))
    throw malformed('queue', 'acked is not a list of lease ids');
  if (!Array.isArray(retried)) throw malformed('queue', 'retried is not a list');
  const retries = retried.map((r: unknown) => {
    const { leaseId, delaySeconds } = record(r, 'queue');
    if (typeof leaseId !== 'string') throw malformed('queue', 'a retry has no lease id');
    if (delaySeconds === undefined) return { leaseId };
    if (typeof delaySeconds !== 'number' || !(delaySeconds >= 0 && delaySeconds <= MAX_DELAY_SECONDS))
      throw malformed('queue', `a retry delay is not a number of seconds from 0 to ${MAX_DELAY_SECONDS}`);
    return { leaseId, delaySeconds };
  });
  if (typeof failed !== 'boolean') throw malformed('queue', 'failed is not true or false');
  const error = errorOf(a.error, 'queue');
  return { acked, retried: retries, failed, ...(error !== undefined ? { error } : {}) };
}

/** Whether a scheduled tick succeeded; throws if the answer is not one. */
export function scheduledAnswer(answer: unknown): ScheduledAnswer {
  const a = record(answer, 'scheduled');
  if (typeof a.ok !== 'boolean') throw malformed('scheduled', 'ok is not true or false');
  const error = errorOf(a.error, 'scheduled');
  return { ok: a.ok, ...(error !== undefined ? { error } : {}) };
}

function record(value: unknown, kind: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(kind, 'it is not an object');
  return value as Record<string, unknown>;
}

/** The error text, cut as the honest instance cuts it. */
function errorOf(error: unknown, kind: string): string | undefined {
  if (error === undefined) return undefined;
  if (typeof error !== 'string') throw malformed(kind, 'its error is not text');
  return error.length > MAX_ERROR_TEXT ? `${error.slice(0, MAX_ERROR_TEXT)}… (cut)` : error;
}

function malformed(kind: string, why: string): Error {
  return new Error(`the instance answered the ${kind} event with something that is not an outcome (${why})`);
}
