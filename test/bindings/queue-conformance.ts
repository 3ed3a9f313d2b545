/**
 * The Queue conformance suite: what a user of any Queue provider can rely on. Each provider's test
 * file calls queueConformance() with a factory; every case uses its own queue and purges it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ResourceRef } from '../../src/bindings/provider.js';
import { type Delivery, MAX_MESSAGE_BYTES, type QueueProvider } from '../../src/bindings/queue/interface.js';
import { KylixError } from '../../src/errors.js';
import { collidingGroups } from './colliding-refs.js';

/** How to run the suite against one provider. */
export interface QueueSuite {
  name: string;
  /** Set when the backend is unreachable: the suite is skipped with this reason. */
  skip?: string;
  open(): Promise<QueueProvider>;
  /** Closes the provider and opens it again on the same data (a restart). */
  reopen(provider: QueueProvider): Promise<QueueProvider>;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const json = (v: unknown) => ({ body: enc(JSON.stringify(v)), contentType: 'json' as const });
const bodies = (ds: Delivery[]) => ds.map((d) => JSON.parse(dec(d.body)) as unknown);
const LONG = 30_000;

/** Registers the suite's cases for one provider. */
export function queueConformance(suite: QueueSuite): void {
  describe(`Queue conformance: ${suite.name}`, { skip: suite.skip }, () => {
    let p: QueueProvider;
    const refs: ResourceRef[] = [];

    before(async () => {
      p = await suite.open();
    });
    after(async () => {
      for (const ref of refs) await p.purge(ref).catch(() => {});
      await p.close();
    });

    /** A fresh, ensured queue for one case. */
    async function queue(): Promise<ResourceRef> {
      const ref = { namespace: 'conformance', name: `q-${randomBytes(4).toString('hex')}` };
      refs.push(ref);
      await p.ensure(ref);
      return ref;
    }
    const receive = (ref: ResourceRef, max = 10, waitMs = 0, leaseMs = LONG) =>
      p.receive(ref, { max, leaseMs, waitMs });

    it('delivers what was sent, once, with its content type, and an ack removes it', async () => {
      const q = await queue();
      await p.send(q, [json({ n: 1 }), { body: enc('two'), contentType: 'text' }, json({ n: 3 })]);
      const got = await receive(q);
      assert.equal(got.length, 3);
      assert.deepEqual(bodies([got[0]!, got[2]!]), [{ n: 1 }, { n: 3 }]);
      assert.equal(dec(got[1]!.body), 'two');
      assert.deepEqual(
        got.map((d) => d.contentType),
        ['json', 'text', 'json'],
      );
      assert.ok(got.every((d) => d.attempts === 1 && Math.abs(d.timestamp - Date.now()) < 60_000));
      assert.equal(new Set(got.map((d) => d.id)).size, 3);
      assert.deepEqual(await receive(q), [], 'leased messages are not delivered twice');
      await p.ack(
        q,
        got.map((d) => d.leaseId),
      );
      assert.deepEqual(await p.stats(q), { ready: 0, inFlight: 0, delayed: 0 });
    });

    it('a waiting receive gets a message sent while it waits', async () => {
      const q = await queue();
      const waiting = receive(q, 10, 10_000);
      await p.send(q, [json('late')]);
      const got = await waiting;
      assert.deepEqual(bodies(got), ['late']);
      await p.ack(q, [got[0]!.leaseId]);
    });

    it('redelivers an unacked message when its lease ends, counting the attempt (at-least-once)', async () => {
      const q = await queue();
      await p.send(q, [json('x')]);
      const [first] = await receive(q, 1, 0, 300);
      assert.ok(first);
      const [second] = await receive(q, 1, 10_000, 300);
      assert.ok(second, 'redelivered after the lease ended');
      assert.equal(second.id, first.id);
      assert.notEqual(second.leaseId, first.leaseId);
      assert.equal(second.attempts, 2);
      await p.ack(q, [second.leaseId]);
      assert.deepEqual(await receive(q, 1, 700, 300), [], 'an acked message never comes back');
    });

    it('does not redeliver a message whose lease is extended', async () => {
      const q = await queue();
      await p.send(q, [json('slow')]);
      const [d] = await receive(q, 1, 0, 400);
      assert.ok(d);
      for (let i = 0; i < 4; i++) {
        await p.extend(q, [d.leaseId], 400);
        assert.deepEqual(await receive(q, 1, 200, 400), [], `no redelivery while extended (${i})`);
      }
      await p.ack(q, [d.leaseId]);
      assert.deepEqual(await receive(q, 1, 600, 400), []);
    });

    it('retry redelivers after the delay and counts attempts', async () => {
      const q = await queue();
      await p.send(q, [json('again')]);
      const [d1] = await receive(q);
      assert.equal(d1?.attempts, 1);
      const t0 = Date.now();
      await p.retry(q, d1!.leaseId, 1);
      assert.deepEqual(await receive(q), [], 'not before the delay');
      const s = await p.stats(q);
      assert.equal(s.ready, 0);
      assert.equal(s.delayed + s.inFlight, 1);
      const [d2] = await receive(q, 10, 10_000);
      assert.ok(Date.now() - t0 >= 900, 'waited for the retry delay');
      assert.equal(d2?.id, d1!.id);
      assert.equal(d2?.attempts, 2);
      await p.retry(q, d2!.leaseId, 0);
      const [d3] = await receive(q, 10, 10_000);
      assert.equal(d3?.attempts, 3);
      assert.deepEqual(bodies([d3!]), ['again']);
      await p.ack(q, [d3!.leaseId]);
    });

    it('holds a message sent with delaySeconds until the delay has passed; its first delivery is attempt 1', async () => {
      const q = await queue();
      const t0 = Date.now();
      await p.send(q, [{ ...json('later'), delaySeconds: 1 }, json('now')]);
      assert.deepEqual(bodies(await receive(q)), ['now']);
      assert.equal((await p.stats(q)).delayed, 1);
      const [d] = await receive(q, 10, 10_000);
      assert.ok(Date.now() - t0 >= 900, 'delivered after the delay');
      assert.deepEqual(bodies([d!]), ['later']);
      assert.equal(d!.attempts, 1);
      assert.ok(d!.timestamp <= t0 + 1000, 'timestamp is when it was sent');
    });

    it('delivers roughly in the order sent (FIFO for one producer), in batches of at most max', async () => {
      const q = await queue();
      await p.send(
        q,
        Array.from({ length: 20 }, (_, i) => json(i)),
      );
      for (let i = 20; i < 25; i++) await p.send(q, [json(i)]);
      const seen: unknown[] = [];
      for (;;) {
        const got = await receive(q, 7);
        if (got.length === 0) break;
        assert.ok(got.length <= 7);
        seen.push(...bodies(got));
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 25 }, (_, i) => i),
      );
      assert.deepEqual(await p.stats(q), { ready: 0, inFlight: 25, delayed: 0 });
    });

    it('stats and peek show waiting messages without leasing them', async () => {
      const q = await queue();
      await p.send(q, [json('a'), json('b'), json('c')]);
      assert.deepEqual(await p.stats(q), { ready: 3, inFlight: 0, delayed: 0 });
      const peeked = await p.peek(q, 2);
      assert.deepEqual(bodies(peeked as Delivery[]), ['a', 'b']);
      assert.ok(peeked.every((m) => m.attempts === 0 && m.contentType === 'json'));
      const got = await receive(q);
      assert.deepEqual(bodies(got), ['a', 'b', 'c'], 'peek leased nothing');
      assert.equal(got[0]!.id, peeked[0]!.id, 'ids are stable between peek and receive');
      assert.ok(got.every((d) => d.attempts === 1));
      assert.deepEqual(await p.stats(q), { ready: 0, inFlight: 3, delayed: 0 });
      await p.ack(q, [got[0]!.leaseId]);
      assert.deepEqual(await p.stats(q), { ready: 0, inFlight: 2, delayed: 0 });
    });

    it('keeps queues apart, and purge empties only its own queue', async () => {
      const a = await queue();
      const b = await queue();
      await p.send(a, [json('for a')]);
      assert.deepEqual(await receive(b), []);
      await p.send(b, [json('for b')]);
      await p.purge(a);
      await assert.rejects(p.send(a, [json('x')]), isCode('ERR_NOT_FOUND'));
      await p.ensure(a);
      assert.deepEqual(await receive(a), [], 'a purged queue comes back empty');
      assert.deepEqual(bodies(await receive(b)), ['for b']);
    });

    it('keeps apart every group of queues the old "-" to "_" identifiers folded together', async () => {
      for (const group of collidingGroups()) {
        refs.push(...group);
        for (const ref of group) await p.ensure(ref);
        for (const [i, ref] of group.entries()) await p.send(ref, [json({ tenant: i })]);
        for (const [i, ref] of group.entries()) {
          const got = await receive(ref);
          assert.deepEqual(bodies(got), [{ tenant: i }], JSON.stringify(ref));
          await p.ack(
            ref,
            got.map((d) => d.leaseId),
          );
        }
        for (const [i, ref] of group.entries()) await p.send(ref, [json({ tenant: i })]);
        const [first, ...rest] = group;
        await p.purge(first!);
        for (const [i, ref] of rest.entries())
          assert.deepEqual(await p.stats(ref), { ready: 1, inFlight: 0, delayed: 0 }, `tenant ${i + 1}`);
      }
    });

    it('rejects a queue that was never ensured, and an oversized message', async () => {
      const ghost = { namespace: 'conformance', name: `ghost-${randomBytes(4).toString('hex')}` };
      await assert.rejects(p.send(ghost, [json(1)]), isCode('ERR_NOT_FOUND'));
      await assert.rejects(receive(ghost), isCode('ERR_NOT_FOUND'));
      const q = await queue();
      const big = { body: new Uint8Array(MAX_MESSAGE_BYTES + 1), contentType: 'bytes' as const };
      await assert.rejects(p.send(q, [big]), isCode('ERR_MESSAGE_TOO_LARGE'));
      const max = { body: new Uint8Array(MAX_MESSAGE_BYTES).fill(7), contentType: 'bytes' as const };
      await p.send(q, [max]);
      const [d] = await receive(q);
      assert.equal(d?.body.byteLength, MAX_MESSAGE_BYTES);
    });

    it('keeps sent messages across a restart; an acked one stays gone, an unacked one comes back', async () => {
      const q = await queue();
      await p.send(q, [json(1), json(2), json(3), { ...json(4), delaySeconds: 1 }]);
      const [d1, d2] = await receive(q, 2, 0, 1500);
      await p.ack(q, [d1!.leaseId]);
      assert.equal(d2?.attempts, 1, 'd2 stays leased, unacked');
      p = await suite.reopen(p);
      const seen = new Map<unknown, number>();
      while (seen.size < 3) {
        const got = await receive(q, 10, 10_000, 1500);
        assert.ok(got.length > 0, `only ${[...seen.keys()]} came back`);
        for (const d of got) seen.set(JSON.parse(dec(d.body)), d.attempts);
        await p.ack(
          q,
          got.map((d) => d.leaseId),
        );
      }
      assert.deepEqual(
        [...seen].sort(([a], [b]) => Number(a) - Number(b)),
        [
          [2, 2],
          [3, 1],
          [4, 1],
        ],
      );
    });
  });
}

/** Matches a KylixError with this code. */
export function isCode(code: string) {
  return (err: unknown) => err instanceof KylixError && err.code === code;
}
