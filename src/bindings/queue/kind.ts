/**
 * The Queue kind (Workers Queues): its installation config, how its providers open, and the one
 * operation a Queue binding (a producer) may call. The consumer side is src/triggers/. Gathered
 * in ../registry.ts.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { QUEUE } from '../../resources/binding-kinds.js';
import { MAX_DELAY_SECONDS } from '../../sandbox/protocol.js';
import { embeddedDataDir, embeddedSection } from '../embedded-config.js';
import { type BindingKind, operations } from '../kind.js';
import { natsConfigSchema } from './index.js';
import type { QueueProvider } from './interface.js';

const op = operations<QueueProvider>();

/** `backends.queue`: embedded, or NATS JetStream for a fleet. */
const config = z
  .discriminatedUnion('provider', [embeddedSection, natsConfigSchema])
  .default({ provider: 'embedded' });

/** See the file comment. */
export const queueKind = {
  name: QUEUE,
  resourceKind: 'Queue',
  config,
  env: { KYLIX_NATS_URL: (url) => ({ provider: 'nats', url }) },
  async open(c, dataDir) {
    const { createQueueProvider } = await import('./index.js');
    return createQueueProvider(
      c.provider === 'embedded'
        ? { provider: 'embedded', dataDir: embeddedDataDir(c, dataDir, 'queues') }
        : c,
    );
  },
  ops: {
    send: op(
      z.tuple([
        z
          .array(
            z.strictObject({
              body: z.instanceof(Uint8Array),
              contentType: z.enum(['json', 'text', 'bytes', 'v8']),
              delaySeconds: z.number().int().min(0).max(MAX_DELAY_SECONDS).optional(),
            }),
          )
          .min(1)
          .max(10_000),
      ]),
      (queue, [messages], { ref, traceparent }) => {
        // Checked here, not by the shape above, so the function reads the limit, not "wrong shape".
        if (messages.length > 100)
          throw new KylixError(
            'ERR_BINDING_BAD_ARGUMENTS',
            `sendBatch() got ${messages.length} messages; a batch holds at most 100 (the Workers Queues limit). Send them in batches of 100.`,
          );
        // The send's trace context travels with each message, so its delivery can link back to it.
        return queue.send(ref, traceparent ? messages.map((m) => ({ ...m, traceparent })) : messages);
      },
    ),
  },
} satisfies BindingKind<typeof QUEUE, QueueProvider, typeof config>;
