/** The node-wide budget namespaces share: within the total, and one namespace within half of it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NamespaceBudget } from '../src/bindings/namespace-budget.js';

describe('namespace budget', () => {
  it('keeps one namespace to half the total, so another always has room', () => {
    const budget = new NamespaceBudget(100);
    const attacker = budget.of('attacker');
    const victim = budget.of('victim');
    assert.equal(budget.of('attacker'), attacker, 'one part per namespace');
    assert.ok(attacker.fits(50));
    attacker.take(50);
    assert.equal(attacker.fits(1), false);
    assert.ok(victim.fits(50));
    victim.take(50);
    assert.equal(budget.of('third').fits(1), false, 'the node total still holds');
    attacker.give(50);
    assert.ok(attacker.fits(50));
    assert.equal(attacker.held, 0);
    assert.equal(budget.held, 50);
    victim.give(50);
    assert.equal(budget.held, 0);
  });
});
