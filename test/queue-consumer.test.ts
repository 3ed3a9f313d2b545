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
  deliveryParts,
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

  it('delivers a batch of large messages in parts that fit one event, each message once', async () => {
    const sized = (n: number, id: string) => ({ id, body: new Uint8Array(n) }) as unknown as Delivery;
    const parts = deliveryParts([sized(6, 'a'), sized(6, 'b'), sized(20, 'c'), sized(1, 'd')], 12);
    assert.deepEqual(
      parts.map((p) => p.map((d) => d.id)),
      [['a', 'b'], ['c'], ['d']],
    );
    const m = memoryQueue();
    const seen: number[] = [];
    const consumer = new QueueConsumer(
      async () => m.provider,
      async (_t, batch): Promise<BatchOutcome> => {
        seen.push(batch.length);
        return { acked: [], retried: [], failed: false };
      },
      () => {},
      { waitMs: 20, leaseMs: 1000 },
    );
    // Ten 5 MB messages in one batch of 10: 50 MB of bodies would not fit one event frame.
    await m.provider.send(
      ref,
      Array.from({ length: 10 }, () => ({ body: new Uint8Array(5_000_000), contentType: 'bytes' })),
    );
    consumer.set(target);
    await until(() => m.size('jobs') === 0);
    await consumer.close();
    assert.deepEqual(seen, [3, 3, 3, 1]);
  });

  it('waits while a backend of the node is down, and does not use up deliveries failed meanwhile', async () => {
    const m = memoryQueue();
    let down: string[] = [];
    let calls = 0;
    const notes: string[] = [];
    const consumer = new QueueConsumer(
      async () => m.provider,
      async () => {
        calls++;
        // The handler's binding call found the database down; the node's outage log marks it.
        down = ['database'];
        throw new Error('ERR_BACKEND_UNAVAILABLE: PostgreSQL failed');
      },
      (_t, _level, message) => notes.push(message),
      { waitMs: 20, leaseMs: 1000, backoffBaseSeconds: 0.01 },
      () => {},
      () => down,
    );
    await m.provider.send(ref, [{ body: text('x'), contentType: 'text' }]);
    consumer.set({ ...target, maxRetries: 0 });
    await until(() => calls === 1);
    // Past its retries (0) while the backend is down: retried, not dead-lettered; no delivery meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(calls, 1);
    assert.equal(m.size('jobs-dlq'), 0);
    assert.equal(m.size('jobs'), 1);
    assert.ok(
      notes.some((n) => /paused: the node's database backend is unavailable/.test(n)),
      notes.join('\n'),
    );
    // Back: delivered again; a failure now counts (maxRetries 0: dead-lettered).
    down = [];
    await until(() => calls === 2);
    await consumer.close();
    assert.ok(
      notes.some((n) => /resumed/.test(n)),
      notes.join('\n'),
    );
  });
});
