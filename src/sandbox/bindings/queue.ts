/** env.X for a Queue binding: Workers Queues' producer; and reading a message body back. */
import { caller, decoder, encoder, type Rpc, toBytes } from './common.js';

/** The operations this object calls: the same as the Queue kind's (a unit test checks it). */
export const QUEUE_OPS = ['send'] as const;

type ContentType = 'json' | 'text' | 'bytes' | 'v8';

async function encodeMessage(
  body: unknown,
  contentType: ContentType | undefined,
): Promise<{ body: Uint8Array; contentType: ContentType }> {
  const type: ContentType =
    contentType ??
    (typeof body === 'string'
      ? 'text'
      : body instanceof ArrayBuffer || ArrayBuffer.isView(body)
        ? 'bytes'
        : 'json');
  if (type === 'json') return { body: encoder.encode(JSON.stringify(body)), contentType: type };
  if (type === 'text') return { body: encoder.encode(String(body)), contentType: type };
  if (type === 'bytes') return { body: await toBytes(body), contentType: type };
  throw new TypeError('contentType "v8" is not supported here: use json, text or bytes.');
}

/** Reads a message body back, by the content type it was sent with. */
export function decodeMessage(body: Uint8Array, contentType: ContentType): unknown {
  if (contentType === 'json') return JSON.parse(decoder.decode(body));
  if (contentType === 'text') return decoder.decode(body);
  return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
}

/** See the file comment. */
export function queueBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof QUEUE_OPS)[number]>(rpc, name);
  return Object.freeze({
    async send(body: unknown, options: { contentType?: ContentType; delaySeconds?: number } = {}) {
      const m = await encodeMessage(body, options.contentType);
      await call('send', [
        [{ ...m, ...(options.delaySeconds ? { delaySeconds: options.delaySeconds } : {}) }],
      ]);
    },
    async sendBatch(
      messages: { body: unknown; contentType?: ContentType; delaySeconds?: number }[],
      options: { delaySeconds?: number } = {},
    ) {
      const encoded = await Promise.all(
        messages.map(async (m) => {
          const delay = m.delaySeconds ?? options.delaySeconds;
          return {
            ...(await encodeMessage(m.body, m.contentType)),
            ...(delay ? { delaySeconds: delay } : {}),
          };
        }),
      );
      await call('send', [encoded]);
    },
  });
}
