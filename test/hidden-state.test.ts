/**
 * hiddenState: state on objects made elsewhere, in a private field that reflection cannot list,
 * a Proxy cannot trap, and that each hiddenState() keeps apart from every other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hiddenState } from '../src/sandbox/hidden-state.js';

describe('hiddenState', () => {
  it('stores state on an object, unseen by reflection, and separately per hiddenState()', () => {
    const requests = hiddenState<{ url: string }>();
    const responses = hiddenState<{ status: number }>();
    const proto = {
      get url() {
        return 'proto';
      },
    };
    const o = Object.create(proto) as object;
    requests.set(o, { url: 'https://x/' });
    assert.deepEqual(requests.get(o), { url: 'https://x/' });
    assert.equal(responses.get(o), undefined, 'another hiddenState does not see it');
    assert.equal(responses.has(o), false);
    assert.equal(requests.has(o), true);
    assert.deepEqual(Reflect.ownKeys(o), []);
    assert.deepEqual(Object.getOwnPropertySymbols(o), []);
    assert.equal(JSON.stringify(o), '{}');
    assert.deepEqual(structuredClone(o), {});
  });

  it('answers undefined for primitives, plain objects and Proxies of a holder, without running traps', () => {
    const state = hiddenState<number>();
    const o = {};
    state.set(o, 1);
    let trapped = false;
    const proxy = new Proxy(o, {
      get: () => {
        trapped = true;
      },
      has: () => {
        trapped = true;
        return true;
      },
      getPrototypeOf: () => {
        trapped = true;
        return null;
      },
    });
    for (const v of [undefined, null, 1, 'x', Symbol('s'), {}, proxy])
      assert.equal(state.get(v as object), undefined);
    assert.equal(state.has(proxy), false);
    assert.equal(trapped, false);
  });

  it('refuses to attach twice (the platform attaches only to objects it has just made)', () => {
    const state = hiddenState<number>();
    const o = {};
    state.set(o, 1);
    assert.throws(() => state.set(o, 2), TypeError);
    assert.equal(state.get(o), 1);
  });
});
