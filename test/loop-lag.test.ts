/**
 * The event-loop lag gauges: the same figures as prom-client's (a short tick reads ~10 ms, a blocked
 * loop reads how long it was blocked), without a 10 ms timer waking an idle process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { LagSampler, registerLoopLag } from '../src/observability/loop-lag.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keeps the loop busy (a turn of ~2 ms every 5 ms) for `ms`. */
async function busy(ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const turn = performance.now() + 2;
    while (performance.now() < turn) {}
    await sleep(3);
  }
}

test('an idle loop is woken about once a second, a busy one every 10 ms', async () => {
  const sampler = new LagSampler();
  const h = sampler.histogram();
  await sleep(1300); // the first window decides it is idle
  const idleFrom = sampler.ticks;
  await sleep(2200);
  const idle = sampler.ticks - idleFrom;
  assert.ok(idle <= 4, `an idle loop was sampled ${idle} times in 2.2 s`);
  const busyFrom = sampler.ticks;
  await busy(2000);
  const busyTicks = sampler.ticks - busyFrom;
  assert.ok(busyTicks >= 30, `a busy loop was sampled only ${busyTicks} times in 2 s`);
  assert.ok(h.count > 0);
});

test('the gauges read ~10 ms for a free loop and the whole block for a blocked one', async () => {
  const registry = new Registry();
  registerLoopLag(registry);
  await busy(300);
  const p50 = Number(/^nodejs_eventloop_lag_p50_seconds (\S+)$/m.exec(await registry.metrics())?.[1]);
  assert.ok(p50 >= 0.009 && p50 < 0.02, `p50 of a free loop: ${p50} s`);
  await sleep(1500); // idle: the sampler is on its one-second tick
  const blockEnd = performance.now() + 400;
  while (performance.now() < blockEnd) {}
  await sleep(1100);
  const text = await registry.metrics();
  const max = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]);
  assert.ok(max >= 0.39 && max < 1.2, `a 400 ms block while idle read max ${max} s`);
  const lag = Number(/^nodejs_eventloop_lag_seconds (\S+)$/m.exec(text)?.[1]);
  assert.ok(lag >= 0 && lag < 0.1, `setImmediate lag ${lag} s`);
});

test('a second scrape within an idle tick keeps the figures of the first', async () => {
  const registry = new Registry();
  registerLoopLag(registry);
  await sleep(1100); // at least one tick, the sampler idle or not
  const p50 = async () =>
    Number(/^nodejs_eventloop_lag_p50_seconds (\S+)$/m.exec(await registry.metrics())?.[1]);
  const first = await p50();
  assert.ok(first >= 0.009, `first scrape: ${first} s`);
  assert.equal(await p50(), first);
});
