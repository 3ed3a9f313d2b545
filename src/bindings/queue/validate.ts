/** Argument checks every Queue provider applies the same way, so users get the same errors everywhere. */
import { KylixError } from '../../errors.js';
import { MAX_MESSAGE_BYTES, type OutgoingMessage } from './interface.js';

const CONTENT_TYPES = new Set(['json', 'text', 'bytes', 'v8']);

/** Rejects a send that no provider could store as asked. */
export function checkMessages(messages: OutgoingMessage[]): void {
  messages.forEach((m, i) => {
    if (!(m.body instanceof Uint8Array))
      throw new KylixError('ERR_BAD_REQUEST', `Message ${i}: the body must be bytes (a Uint8Array).`);
    if (m.body.byteLength > MAX_MESSAGE_BYTES)
      throw new KylixError(
        'ERR_MESSAGE_TOO_LARGE',
        `Message ${i} is ${m.body.byteLength} bytes; a queue message may be at most ${MAX_MESSAGE_BYTES} bytes. Store large payloads in a Bucket and send their key.`,
      );
    if (!CONTENT_TYPES.has(m.contentType))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `Message ${i}: unknown contentType "${String(m.contentType)}".`,
      );
    const d = m.delaySeconds;
    if (d !== undefined && !(Number.isFinite(d) && d >= 0))
      throw new KylixError('ERR_BAD_REQUEST', `Message ${i}: delaySeconds must be a number ≥ 0.`);
  });
}

/** Rejects receive options that make no sense. */
export function checkReceive(options: { max: number; leaseMs: number; waitMs: number }): void {
  if (!Number.isInteger(options.max) || options.max < 1)
    throw new KylixError('ERR_BAD_REQUEST', 'receive: max must be an integer ≥ 1.');
  if (!(options.leaseMs > 0)) throw new KylixError('ERR_BAD_REQUEST', 'receive: leaseMs must be > 0.');
  if (!(options.waitMs >= 0)) throw new KylixError('ERR_BAD_REQUEST', 'receive: waitMs must be ≥ 0.');
}
