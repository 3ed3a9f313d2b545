/** CpuGauge: the busy share of this process's cores, from the kernel's per-core counters. */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { CpuGauge, parseProcStat, SATURATED } from '../src/runtime/cpu-gauge.js';

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

  it('parses the per-core lines of /proc/stat, skipping the all-cores line and gaps in numbering', () => {
    const text = [
      'cpu  300 0 60 900 5 0 7 0 0 0',
      'cpu0 100 1 20 400 2 3 4 0 0 0',
      'cpu2 200 0 40 500 3 9 3 0 0 0',
      'intr 12345 0 0',
      'ctxt 999',
      'cpu',
    ].join('\n');
    const cores = parseProcStat(text);
    assert.deepEqual([...cores.keys()], [0, 2]);
    assert.deepEqual(cores.get(0), { user: 100, nice: 1, sys: 20, idle: 400, irq: 3 });
    assert.deepEqual(cores.get(2), { user: 200, nice: 0, sys: 40, idle: 500, irq: 9 });
    assert.equal(parseProcStat('').size, 0);
  });
});
