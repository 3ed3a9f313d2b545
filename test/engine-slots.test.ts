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
    await h.start('b');
    h.idle(a);
    await h.start('c');
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
    const h = fakeHost(2, 200);
    await h.start('a');
    await h.start('b');
    await assert.rejects(h.start('c'), (err: KylixError) => {
      assert.equal(err.code, 'ERR_OVERLOADED');
      assert.match(err.message, /All 2 embedded database engines on this node are busy/);
      return true;
    });
  });

  it('holds one namespace to half the slots, alone or not, so another always finds room', async () => {
    const h = fakeHost(4, 200);
    await h.start('greedy');
    await h.start('greedy');
    // Its third start waits for its own engines, and fails if they stay busy, with slots free.
    await assert.rejects(h.start('greedy'), /"greedy" already has 2 embedded database engines busy/);
    assert.equal(h.slots.inUse, 2);
    await h.start('victim');
    await h.start('victim');
    assert.equal(h.slots.inUse, 4);
  });

  it('drains an engine of a namespace at its share for one that waits while every slot is busy', async () => {
    const h = fakeHost(4, 2000);
    for (const ns of ['a', 'a', 'b', 'b']) await h.start(ns);
    const c = h.start('c');
    await new Promise((r) => setTimeout(r, 50));
    const draining = h.engines.filter((e) => e.draining);
    assert.equal(draining.length, 1, 'no engine of a namespace at its share was drained');
    // The drained engine finishes its work and closes; the slot goes to the namespace that waited.
    h.idle(draining[0]!);
    await c;
    assert.equal(h.engines.filter((e) => e.ns === 'c').length, 1);
    assert.equal(h.slots.inUse, 4);
  });

  it('does not miss a release that comes while it is looking for an idle engine to close', async () => {
    // An engine is released while the waiting start is inside closeIdle (which finds none): the
    // start must take that slot at once, not sleep to its deadline.
    let releaseDuringLookup: (() => void) | undefined;
    const slots = new EngineSlots(
      2,
      {
        async closeIdle() {
          await new Promise((r) => setImmediate(r));
          releaseDuringLookup?.();
          releaseDuringLookup = undefined;
          return false;
        },
        drain: () => false,
      },
      5000,
    );
    releaseDuringLookup = await slots.acquire('a');
    await slots.acquire('b');
    const began = Date.now();
    await slots.acquire('c');
    assert.ok(Date.now() - began < 1000, `waited ${Date.now() - began} ms`);
  });
});
