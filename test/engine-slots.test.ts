/**
 * Engine slots: how many embedded Database engines run at once, and how many one namespace holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineSlots } from '../src/bindings/database/engine-slots.js';
import type { KylixError } from '../src/errors.js';

/** Engines the fake provider runs: their namespace, whether idle, and the slot's release. */
interface Engine {
  ns: string;
  idle: boolean;
  release: () => void;
}

function fakeProvider(max: number, waitMs = 300) {
  const engines: Engine[] = [];
  const closed: string[] = [];
  const slots = new EngineSlots(
    max,
    async (ns) => {
      const i = engines.findIndex((e) => e.idle && (ns === undefined || e.ns === ns));
      if (i === -1) return false;
      const [e] = engines.splice(i, 1);
      closed.push(e!.ns);
      e!.release();
      return true;
    },
    waitMs,
  );
  const start = async (ns: string): Promise<Engine> => {
    const release = await slots.acquire(ns);
    const e = { ns, idle: false, release };
    engines.push(e);
    return e;
  };
  return { slots, engines, closed, start };
}

describe('EngineSlots', () => {
  it('runs at most max engines: a start past it closes an idle one, or waits for one to become idle', async () => {
    const p = fakeProvider(2, 2000);
    const a = await p.start('a');
    await p.start('a');
    a.idle = true;
    await p.start('a');
    assert.deepEqual(p.closed, ['a'], 'the idle engine made room');
    assert.equal(p.engines.length, 2);
    // Both busy: the next start waits until one finishes its work.
    const waiting = p.start('a');
    let started = false;
    void waiting.then(() => {
      started = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(started, false, 'started past the limit');
    p.engines[0]!.idle = true;
    p.slots.wake();
    await waiting;
    assert.equal(p.engines.length, 2);
  });

  it('refuses with ERR_OVERLOADED when every engine stays busy', async () => {
    const p = fakeProvider(1, 200);
    await p.start('a');
    await assert.rejects(p.start('a'), (err: KylixError) => {
      assert.equal(err.code, 'ERR_OVERLOADED');
      assert.match(err.message, /All 1 embedded database engines on this node are busy/);
      return true;
    });
  });

  it("keeps one namespace's busy engines to half the node while another namespace wants one", async () => {
    const p = fakeProvider(4, 200);
    // Alone, a namespace may use every slot.
    for (let i = 0; i < 3; i++) await p.start('greedy');
    // Another namespace gets the free slot, however busy the first one keeps its engines.
    await p.start('victim');
    // Now the greedy one is past its share (2 of 4) while the victim holds one: it must wait for,
    // or close, its own engines, never the victim's.
    p.engines.find((e) => e.ns === 'victim')!.idle = true;
    await assert.rejects(p.start('greedy'), /already has 3 embedded database engines busy/);
    assert.deepEqual(p.closed, [], "the other namespace's idle engine was closed for it");
    // The victim asks again: its idle engine or the greedy one's idle engines make room.
    p.engines.find((e) => e.ns === 'greedy')!.idle = true;
    await p.start('victim');
    assert.equal(p.engines.filter((e) => e.ns === 'victim').length, 2);
  });
});
