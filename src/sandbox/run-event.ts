/**
 * Runs one event the gateway framed on an instance's channel: a queue batch through the module's
 * queue(batch, env, ctx), or a scheduled tick through scheduled(event, env, ctx), and returns what
 * the supervisor needs to settle it (the batch's acks and retries, or whether the tick succeeded),
 * after the handler's waitUntil work.
 */
import { Buffer } from 'node:buffer';
import type { EventHead } from './channel.js';
import type { ExecutionContext, Handler } from './handler.js';
import { errorText, messageBatch, scheduledEvent, type WireDelivery } from './handler-args.js';

/** See the file comment; failures of the handler are logged and reported in the result, never thrown. */
export async function runEvent(
  handler: Handler,
  env: Record<string, unknown>,
  logError: (...args: unknown[]) => void,
  event: EventHead,
): Promise<unknown> {
  const payload = event.payload as Record<string, unknown>;
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContext = {
    waitUntil: (p) =>
      void pending.push(Promise.resolve(p).catch((err) => logError('waitUntil promise rejected:', err))),
    passThroughOnException() {},
  };
  if (event.kind === 'queue') {
    const deliveries = (payload.messages as (Omit<WireDelivery, 'body'> & { body: string })[]).map((d) => ({
      ...d,
      body: new Uint8Array(Buffer.from(d.body, 'base64')),
    }));
    const { batch, outcome } = messageBatch(String(payload.queue), deliveries);
    let error: unknown;
    try {
      if (!handler.queue)
        throw new Error('The function has no queue(batch, env, ctx) handler, but a queue trigger.');
      await handler.queue(batch, env, ctx);
    } catch (err) {
      error = err;
      logError('Uncaught exception in queue():', err);
    }
    await Promise.all(pending);
    return outcome(error);
  }
  try {
    if (!handler.scheduled)
      throw new Error('The function has no scheduled(event, env, ctx) handler, but a schedule trigger.');
    await handler.scheduled(scheduledEvent(payload as { cron: string; scheduledTime: number }), env, ctx);
    await Promise.all(pending);
    return { ok: true };
  } catch (err) {
    logError('Uncaught exception in scheduled():', err);
    return { ok: false, error: errorText(err) };
  }
}
