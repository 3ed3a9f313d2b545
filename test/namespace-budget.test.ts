/** The node-wide budget namespaces share: within the total, and one namespace within half of it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NamespaceBudget } from '../src/bindings/namespace-budget.js';

describe('namespace budget', () => {
  it('keeps one namespace to half the total, so another always has room', () => {
    const budget = new NamespaceBudget(100);
    assert.ok(budget.fits('attacker', 50));
    budget.take('attacker', 50);
    assert.equal(budget.fits('attacker', 1), false);
    assert.ok(budget.fits('victim', 50));
    budget.take('victim', 50);
    assert.equal(budget.fits('third', 1), false, 'the node total still holds');
    budget.give('attacker', 50);
    assert.ok(budget.fits('attacker', 50));
    assert.equal(budget.heldBy('attacker'), 0);
    assert.equal(budget.held, 50);
    budget.give('victim', 50);
    assert.equal(budget.held, 0);
  });
});
