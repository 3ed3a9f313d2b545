/** CpuGauge: the busy share of this process's cores, from the kernel's per-core counters. */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { CpuGauge, SATURATED } from '../src/runtime/cpu-gauge.js';

describe('CpuGauge', () => {
  it('reads 0 before two samples, then a share between 0 and 1 that counts a busy core', () => {
    const gauge = new CpuGauge();
    assert.equal(gauge.cores, availableParallelism());
    gauge.sample();
    assert.equal(gauge.busy, 0);
    // Keep one core busy for 300 ms: at least a share of 1/cores (less what the kernel's tick misses).
    const until = Date.now() + 300;
    let spins = 0;
    while (Date.now() < until) spins++;
    gauge.sample();
    assert.ok(spins > 0);
    assert.ok(gauge.busy > 0.5 / gauge.cores, `busy ${gauge.busy} with one of ${gauge.cores} cores spinning`);
    assert.ok(gauge.busy <= 1, `busy ${gauge.busy}`);
    assert.equal(gauge.saturated(), gauge.busy >= SATURATED);
  });
});
