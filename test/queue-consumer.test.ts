/**
 * The consumer loop's policy: implicit ack/retry, exponential backoff, dead-lettering after
 * maxRetries + 1 deliveries, lease extension for slow handlers. The queue here is a small
 * in-memory one with real leases; the providers have their own conformance suite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delivery, OutgoingMessage, QueueProvider } from '../src/bindings/queue/interface.js';
import {
  type BatchOutcome,
  backoffSeconds,
  type ConsumerTarget,
  QueueConsumer,
} from '../src/triggers/queue-consumer.js';
import { eventually } from './helpers/eventually.js';

interface Stored {
  id: string;
  body: Uint8Array;
  attempts: number;
  visibleAt: number;
  leaseId?: string;
}

function memoryQueue() {
  const queues = new Map<string, Stored[]>();
  const retries: number[] = [];
  const extended: string[] = [];
  let n = 0;
  const q = (name: string): Stored[] => {
    let list = queues.get(name);
    if (!list) {
      list = [];
      queues.set(name, list);
    }
    return list;
  };
  const provider: QueueProvider = {
    name: 'memory',
    ensure: async () => {},
    purge: async () => {},
    health: async () => ({ ok: true, message: '' }),
    close: async () => {},
    async send(ref, messages: OutgoingMessage[]) {
      for (const m of messages) q(ref.name).push({ id: `m${++n}`, body: m.body, attempts: 0, visibleAt: 0 });
    },
    async receive(ref, { max, leaseMs, waitMs }) {
      const end = Date.now() + waitMs;
      for (;;) {
        const now = Date.now();
        const ready = q(ref.name)
          .filter((m) => m.visibleAt <= now)
          .slice(0, max);
        if (ready.length || Date.now() >= end) {
          return ready.map((m): Delivery => {
            m.attempts++;
            m.leaseId = `l${++n}`;
            m.visibleAt = now + leaseMs;
            return {
              leaseId: m.leaseId,
              id: m.id,
              body: m.body,
              contentType: 'text',
              attempts: m.attempts,
              timestamp: now,
            };
          });
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    async extend(ref, leaseIds, leaseMs) {
      for (const m of q(ref.name))
        if (m.leaseId && leaseIds.includes(m.leaseId)) m.visibleAt = Date.now() + leaseMs;
      extended.push(...leaseIds);
    },
    async ack(ref, leaseIds) {
      queues.set(
        ref.name,
        q(ref.name).filter((m) => !m.leaseId || !leaseIds.includes(m.leaseId)),
      );
    },
    async retry(ref, leaseId, delaySeconds) {
      retries.push(delaySeconds);
      for (const m of q(ref.name)) if (m.leaseId === leaseId) m.visibleAt = Date.now() + delaySeconds * 1000;
    },
    stats: async () => ({ ready: 0, inFlight: 0, delayed: 0 }),
    peek: async () => [],
  };
  return { provider, queues, retries, extended, size: (name: string) => q(name).length };
}

const target: ConsumerTarget = {
  namespace: 'default',
  functionName: 'worker',
  queue: 'jobs',
  batchSize: 10,
  maxRetries: 3,
  deadLetter: 'jobs-dlq',
};
const ref = { namespace: 'default', name: 'jobs' };
const text = (s: string) => new TextEncoder().encode(s);

/** The consumer loop acts within milliseconds here: poll often, give up after 5 s. */
const until = (check: () => boolean) => eventually(check, 5000, 5);

describe('queue consumer', () => {
  it('acks what the handler returns from and delivers a poison message maxRetries + 1 times, then dead-letters it', async () => {
    const m = memoryQueue();
    const deliveries = new Map<string, number>();
    const consumer = new QueueConsumer(
      async () => m.provider,
      async (_t, batch): Promise<BatchOutcome> => {
        for (const d of batch)
          deliveries.set(
            new TextDecoder().decode(d.body),
            (deliveries.get(new TextDecoder().decode(d.body)) ?? 0) + 1,
          );
        const poison = batch.find((d) => new TextDecoder().decode(d.body) === 'poison');
        // Workers semantics: retry the poison message explicitly, everything else is acked implicitly.
        return {
          acked: [],
          retried: poison ? [{ leaseId: poison.leaseId, delaySeconds: 0 }] : [],
          failed: false,
        };
      },
      () => {},
      { waitMs: 20, leaseMs: 1000 },
    );
    await m.provider.send(ref, [
      { body: text('good'), contentType: 'text' },
      { body: text('poison'), contentType: 'text' },
    ]);
    consumer.set(target);
    await until(() => m.size('jobs-dlq') === 1);
    await consumer.close();
    assert.equal(deliveries.get('good'), 1);
    assert.equal(deliveries.get('poison'), target.maxRetries + 1);
    assert.equal(m.size('jobs'), 0);
  });

  it('retries a failed batch with exponential backoff', async () => {
    assert.deepEqual(
      [1, 2, 3, 4, 10].map((a) => backoffSeconds(a, 1, 300)),
      [1, 2, 4, 8, 300],
    );
    const m = memoryQueue();
    let calls = 0;
    const consumer = new QueueConsumer(
      async () => m.provider,
      async () => {
        calls++;
        throw new Error('handler crashed');
      },
      () => {},
      { waitMs: 20, leaseMs: 1000, backoffBaseSeconds: 0.01 },
    );
    await m.provider.send(ref, [{ body: text('x'), contentType: 'text' }]);
    consumer.set({ ...target, maxRetries: 2 });
    await until(() => m.size('jobs-dlq') === 1);
    await consumer.close();
    assert.equal(calls, 3);
    assert.deepEqual(m.retries, [0.01, 0.02]);
  });

  it('extends the lease while a slow handler runs, so the message is not redelivered under it', async () => {
    const m = memoryQueue();
    let calls = 0;
    const consumer = new QueueConsumer(
      async () => m.provider,
      async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 300)); // six lease lengths
        return { acked: [], retried: [], failed: false };
      },
      () => {},
      { waitMs: 20, leaseMs: 50 },
    );
    await m.provider.send(ref, [{ body: text('slow'), contentType: 'text' }]);
    consumer.set(target);
    await until(() => m.size('jobs') === 0);
    await consumer.close();
    assert.equal(calls, 1);
    assert.ok(m.extended.length >= 3);
  });
});
