/**
 * Delivers an event (a queue batch, a scheduled tick) to an instance of a revision: the same pool,
 * limits and accounting as a request, as an EVENT frame on the instance's channel — a frame type
 * only the supervisor sends, so no client request can ever reach queue() or scheduled().
 */
import { F } from '../sandbox/channel.js';
import type { Runtime } from './runtime.js';

/**
 * The most an instance may answer an event with (the handler's decisions as JSON: a lease id per
 * message of a batch of up to 1,000, and an error text of at most 8 KiB). It is the stream's only
 * credit, never granted again, so the channel ends an instance that sends more.
 */
export const MAX_EVENT_ANSWER_BYTES = 2 ** 20;

/** Sends `payload` as a `kind` event to the revision; resolves with the handler's JSON answer. */
export async function invokeEvent(
  runtime: Runtime,
  revisionKey: string,
  kind: 'queue' | 'scheduled',
  payload: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const lease = await runtime.acquire(revisionKey);
  const { channel } = lease.instance;
  try {
    return await new Promise((resolve, reject) => {
      const chunks: Uint8Array[] = [];
      let stream = 0;
      const timer = setTimeout(() => {
        channel.abort(stream);
        reject(
          new Error(`the ${kind} handler did not finish within ${timeoutMs} ms (spec.limits.timeoutMs)`),
        );
      }, timeoutMs);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      const parse = (body: Uint8Array) => {
        try {
          resolve(JSON.parse(Buffer.from(body).toString('utf8')));
        } catch {
          reject(new Error(`the instance answered the ${kind} event with something other than JSON`));
        }
      };
      stream = channel.open(
        {
          response: (_head, body) => {
            if (body) settle(() => parse(body));
          },
          body: (chunk) => chunks.push(chunk),
          end: () => settle(() => parse(Buffer.concat(chunks))),
          threw: () =>
            settle(() => reject(new Error(`the ${kind} handler could not be run; see the function's log`))),
          reset: () => settle(() => reject(new Error(`the ${kind} handler's answer was cut off`))),
          credit: () => undefined,
          closed: () =>
            settle(() => {
              runtime.instanceFailed(lease.instance.id);
              reject(new Error(`the instance stopped while handling the ${kind} event`));
            }),
        },
        MAX_EVENT_ANSWER_BYTES,
      );
      channel.sendHead(F.EVENT, stream, { kind, id: '', payload });
    });
  } finally {
    lease.release();
  }
}
