/**
 * `kylix trigger scheduled|queue NAME`: runs a function's scheduled() or queue() handler by hand,
 * as a subresource of the Function (POST …/functions/NAME/trigger), answering with what the
 * handler decided (ok or its error; which messages it acked or retried).
 */
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { KylixError } from '../errors.js';
import { API_VERSION } from '../resources/meta.js';
import { parseBody, readBodyBytes } from './api-input.js';
import type { Registry } from './registry.js';
import type { FunctionEvents, ManualEvent } from './serving.js';

/** The most messages one manual batch may hold (a queue trigger's batchSize maximum). */
const MAX_MESSAGES = 1000;

/** Reads and checks the request's event. */
function eventOf(body: unknown): ManualEvent {
  const b = (body ?? {}) as { kind?: unknown; cron?: unknown; messages?: unknown };
  if (b.kind === 'scheduled') {
    if (b.cron !== undefined && typeof b.cron !== 'string')
      throw new KylixError('ERR_BAD_REQUEST', 'cron must be a string such as "*/5 * * * *".');
    return { kind: 'scheduled', ...(typeof b.cron === 'string' ? { cron: b.cron } : {}) };
  }
  if (b.kind === 'queue') {
    if (!Array.isArray(b.messages) || b.messages.length === 0 || b.messages.length > MAX_MESSAGES)
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `messages must be a list of 1 to ${MAX_MESSAGES} message bodies (JSON values).`,
      );
    return { kind: 'queue', messages: b.messages };
  }
  throw new KylixError('ERR_BAD_REQUEST', 'kind must be "scheduled" or "queue".');
}

/** Adds the trigger route to the API app. */
export function addTriggerRoutes(
  app: Hono<{ Bindings: HttpBindings }>,
  registry: Registry,
  events: FunctionEvents,
): void {
  app.post(`/apis/${API_VERSION}/namespaces/:ns/functions/:name/trigger`, async (c) => {
    const { ns, name } = c.req.param();
    await registry.get('Function', ns, name);
    const event = eventOf(parseBody((await readBodyBytes(c)).toString('utf8'), 'json'));
    let answer: unknown;
    try {
      answer = await events.fire(ns, name, event);
    } catch (err) {
      throw new KylixError(
        'ERR_NOT_READY',
        `Could not run ${event.kind}() of ${name}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return c.json({ kind: 'TriggerResult', apiVersion: API_VERSION, event: event.kind, result: answer });
  });
}
