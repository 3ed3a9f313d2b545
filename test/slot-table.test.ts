/**
 * SlotTable and SlotIndex: ids that reuse slots but never find what replaced them, checked against
 * a Map as the model over many random operations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlotIndex, SlotTable } from '../src/sandbox/slot-table.js';

/** A small deterministic PRNG, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('SlotTable', () => {
  it('behaves as a Map of the ids it hands out, and a deleted id finds nothing after its slot is reused', () => {
    const table = new SlotTable<string>();
    const model = new Map<number, string>();
    const deleted: number[] = [];
    const next = random(7);
    for (let step = 0; step < 50_000; step++) {
      const live = [...model.keys()];
      if (live.length === 0 || next() < 0.55) {
        const value = `v${step}`;
        const id = table.add(value);
        assert.ok(id > 0 && id < 2 ** 32 && Number.isInteger(id), `id ${id} fits a frame's u32`);
        assert.equal(model.has(id), false, 'an id is never handed out twice while it is live');
        model.set(id, value);
      } else {
        const id = live[Math.floor(next() * live.length)] as number;
        assert.equal(table.delete(id), model.get(id));
        model.delete(id);
        deleted.push(id);
      }
      assert.equal(table.size, model.size);
    }
    for (const [id, value] of model) assert.equal(table.get(id), value);
    // Every deleted id whose slot now holds something else (or nothing) finds nothing.
    for (const id of deleted.slice(-1000)) if (!model.has(id)) assert.equal(table.get(id), undefined);
    assert.equal(table.delete(deleted.at(-1) as number), undefined, 'deleting twice does nothing');
    assert.deepEqual(table.values().sort(), [...model.values()].sort());
  });

  it('reuses slots, oldest first, so its arrays stay as large as the most ever held at once plus 1,024', () => {
    const table = new SlotTable<number>();
    const ids = Array.from({ length: 64 }, (_, i) => table.add(i));
    for (let round = 0; round < 10_000; round++) {
      const i = round % 64;
      assert.equal(table.delete(ids[i] as number), i);
      ids[i] = table.add(i);
    }
    for (const id of ids) assert.ok((id & (2 ** 14 - 1)) < 64 + 1024, 'no slot past 64 + 1,024');
    assert.equal(table.clear().length, 64);
    assert.equal(table.size, 0);
    for (const id of ids) assert.equal(table.get(id), undefined);
  });

  /**
   * Opens and ends `opens` streams one after another, asserting that no id comes back before 1,024 ×
   * 3 opens (30 slot bits leave 2 generation bits: generations 1-3). Returns the distinct ids seen.
   */
  function assertNoEarlyRecurrence(table: SlotTable<number>, opens: number): number {
    const lastSeen = new Map<number, number>();
    for (let open = 0; open < opens; open++) {
      const id = table.add(open);
      const before = lastSeen.get(id);
      if (before !== undefined)
        assert.ok(open - before >= 1024 * 3, `id ${id} came back after ${open - before} opens`);
      lastSeen.set(id, open);
      table.delete(id);
    }
    return lastSeen.size;
  }

  it('hands out an id again only after every slot has had every generation (no early wrap)', () => {
    const table = new SlotTable<number>(30);
    assert.equal(assertNoEarlyRecurrence(table, 1024 * 3 * 4), 1024 * 3);
  });

  it('with most slots held open, still gives no id back before 1,024 × its generations opens', () => {
    const table = new SlotTable<number>(30);
    for (let i = 0; i < 1023; i++) table.add(i); // held open throughout
    assertNoEarlyRecurrence(table, 1024 * 3 * 3);
  });

  it('reuses slots when it cannot grow, and refuses only when every slot is taken', () => {
    const small = new SlotTable<number>(4);
    for (let i = 0; i < 100; i++) small.delete(small.add(i));
    for (let i = 0; i < 16; i++) small.add(i);
    assert.throws(() => small.add(0), RangeError);
    const table = new SlotTable<number>();
    for (let i = 0; i < 2 ** 14; i++) table.add(i);
    assert.throws(() => table.add(0), RangeError);
  });

  it('forEach visits every value once, and a value deleted during the walk is not visited', () => {
    const table = new SlotTable<string>();
    const a = table.add('a');
    table.add('b');
    const c = table.add('c');
    const seen: string[] = [];
    table.forEach((v) => {
      seen.push(v);
      if (v === 'a') table.delete(c);
    });
    assert.deepEqual(seen, ['a', 'b']);
    table.delete(a);
    assert.deepEqual(table.values(), ['b']);
  });
});

describe('SlotIndex', () => {
  it('finds values by the ids another side handed out, and only by the exact id', () => {
    const ids = new SlotTable<true>();
    const index = new SlotIndex<string>();
    const a = ids.add(true);
    index.set(a, 'a');
    assert.equal(index.get(a), 'a');
    ids.delete(a);
    index.delete(a);
    const b = a + 2 ** 14; // the id the same slot gets in its next generation
    assert.notEqual(b, a);
    index.set(b, 'b');
    assert.equal(index.get(a), undefined);
    assert.equal(index.get(b), 'b');
    index.delete(a); // a stale id deletes nothing
    assert.equal(index.get(b), 'b');
  });
});
