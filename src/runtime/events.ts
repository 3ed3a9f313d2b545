/**
 * Delivers an event (a queue batch, a scheduled tick) to an instance of a revision: the same pool,
 * limits and accounting as a request, over the instance's socket, with a header only the
 * supervisor can set (the gateway drops it from client requests).
 */
import { request } from 'node:http';
import { EVENT_HEADER } from '../sandbox/protocol.js';
import type { Runtime } from './runtime.js';

/** Sends `payload` as a `kind` event to the revision; resolves with the handler's JSON answer. */
export async function invokeEvent(
  runtime: Runtime,
  revisionKey: string,
  kind: 'queue' | 'scheduled',
  payload: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const lease = await runtime.acquire(revisionKey);
  try {
    const body = JSON.stringify(payload);
    return await new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: lease.instance.socketPath,
          agent: lease.instance.agent,
          method: 'POST',
          path: `/__kylix/${kind}`,
          headers: {
            [EVENT_HEADER]: kind,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            } catch {
              reject(
                new Error(`the instance answered the ${kind} event with HTTP ${res.statusCode}, not JSON`),
              );
            }
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(
          new Error(`the ${kind} handler did not finish within ${timeoutMs} ms (spec.limits.timeoutMs)`),
        ),
      );
      req.on('error', (err) => {
        runtime.instanceFailed(lease.instance.id);
        reject(err);
      });
      req.end(body);
    });
  } finally {
    lease.release();
  }
}
