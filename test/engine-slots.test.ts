/**
 * Engine slots: how many embedded Database engines run at once, and how namespaces share them. The
 * host here is a fake whose engines the test makes busy or idle; closing one releases its slot a
 * turn later, as a real engine's close does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineSlots } from '../src/bindings/database/engine-slots.js';
import type { KylixError } from '../src/errors.js';

/** An engine of the fake host. */
interface Engine {
  ns: string;
  idle: boolean;
  draining: boolean;
  release: () => void;
}

function fakeHost(max: number, waitMs = 300) {
  const engines: Engine[] = [];
  const closed: string[] = [];
  const close = async (e: Engine) => {
    engines.splice(engines.indexOf(e), 1);
    closed.push(e.ns);
    await new Promise((r) => setImmediate(r));
    e.release();
  };
  const slots: EngineSlots = new EngineSlots(
    max,
    {
      async closeIdle(only, prefer) {
        const idle = (ns?: string) => engines.find((e) => e.idle && (ns === undefined || e.ns === ns));
        const e = only !== undefined ? idle(only) : (prefer !== undefined && idle(prefer)) || idle();
        if (!e) return false;
        await close(e);
        return true;
      },
      drain(ns) {
        const mine = engines.filter((e) => e.ns === ns);
        if (mine.some((e) => e.draining)) return true;
        const e = mine[0];
        if (!e) return false;
        e.draining = true;
        return true;
      },
    },
    waitMs,
  );
  const start = async (ns: string): Promise<Engine> => {
    const release = await slots.acquire(ns);
    const e = { ns, idle: false, draining: false, release };
    engines.push(e);
    return e;
  };
  /** The engine finished its work: a draining one closes, and waiters look again. */
  const idle = (e: Engine) => {
    e.idle = true;
    if (e.draining) void close(e);
    slots.wake();
  };
  return { slots, engines, closed, start, idle };
}

describe('EngineSlots', () => {
  it('runs at most max engines: a start past it closes an idle one, or waits for one to become idle', async () => {
    const h = fakeHost(2, 2000);
    const a = await h.start('a');
    await h.start('a');
    h.idle(a);
    await h.start('a');
    assert.deepEqual(h.closed, ['a'], 'the idle engine made room');
    assert.equal(h.slots.inUse, 2);
    let started = false;
    const waiting = h.start('a').then(() => {
      started = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(started, false, 'started past the limit');
    h.idle(h.engines[0]!);
    await waiting;
    assert.equal(h.slots.inUse, 2);
  });

  it('refuses with ERR_OVERLOADED when every engine stays busy', async () => {
    const h = fakeHost(1, 200);
    await h.start('a');
    await assert.rejects(h.start('a'), (err: KylixError) => {
      assert.equal(err.code, 'ERR_OVERLOADED');
      assert.match(err.message, /All 1 embedded database engines on this node are busy/);
      return true;
    });
  });

  it('lets a namespace that took every slot alone not keep another out: one of its engines drains', async () => {
    const h = fakeHost(4, 2000);
    for (let i = 0; i < 4; i++) await h.start('greedy');
    const victim = h.start('victim');
    await new Promise((r) => setTimeout(r, 50));
    const draining = h.engines.filter((e) => e.draining);
    assert.equal(draining.length, 1, 'no engine of the namespace past its share was drained');
    // The drained engine finishes its work and closes; the slot goes to the namespace that waited.
    h.idle(draining[0]!);
    await victim;
    assert.equal(h.engines.filter((e) => e.ns === 'victim').length, 1);
    // While the victim waits for a second engine, the greedy namespace (past its share) starts no
    // more: the next slot freed goes to the victim.
    const order: string[] = [];
    const victim2 = h.start('victim').then(() => order.push('victim'));
    await new Promise((r) => setTimeout(r, 20));
    const greedy = h.start('greedy').then(() => order.push('greedy'));
    await new Promise((r) => setTimeout(r, 20));
    const drained = h.engines.find((e) => e.draining);
    assert.ok(drained, 'no engine drained for the second wait');
    h.idle(drained);
    await victim2;
    assert.deepEqual(order, ['victim']);
    // Once nobody else waits, the greedy namespace may use a slot that frees.
    h.idle(h.engines.find((e) => e.ns === 'greedy' && !e.draining)!);
    await greedy;
    assert.deepEqual(order, ['victim', 'greedy']);
  });

  it("is not held to half by another namespace's idle engine while slots are free", async () => {
    const h = fakeHost(4, 300);
    const other = await h.start('other');
    h.idle(other);
    for (let i = 0; i < 3; i++) await h.start('a');
    assert.equal(h.engines.filter((e) => e.ns === 'a').length, 3);
    assert.deepEqual(h.closed, []);
  });

  it('does not miss a release that comes while it is closing an idle engine', async () => {
    // Two namespaces, one slot each; b's engine idles and is closed (released a turn later) while
    // a's start waits: a must take the slot at once, not at its deadline.
    const h = fakeHost(2, 5000);
    await h.start('a');
    const b = await h.start('b');
    const began = Date.now();
    const waiting = h.start('a');
    await new Promise((r) => setTimeout(r, 20));
    h.idle(b);
    await waiting;
    assert.ok(Date.now() - began < 1000, `waited ${Date.now() - began} ms`);
  });
});
