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

/** Blocks the loop for `ms`. */
function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

/** Resolves once `sampler` is on its idle tick and has just fired. */
async function justAfterIdleTick(sampler: LagSampler): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!sampler.idle) {
    assert.ok(performance.now() < deadline, 'the sampler never went idle');
    await sleep(20);
  }
  const ticks = sampler.ticks;
  while (sampler.ticks === ticks) await sleep(5);
}

const gaugeValue = (text: string, name: string) =>
  Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

test('an idle loop is woken about once a second, a busy one every 10 ms', async () => {
  const sampler = new LagSampler();
  const h = sampler.histogram();
  await justAfterIdleTick(sampler);
  // The polling that found the tick ran in the window that tick judged: on a slow, contended core
  // its wake-ups alone passed BUSY (5 %) and the sampler spent a second busy. One quiet window first.
  await sleep(1100);
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

test('the gauges read ~10 ms for a free loop', async () => {
  const registry = new Registry();
  registerLoopLag(registry, new LagSampler());
  await busy(300);
  const p50 = gaugeValue(await registry.metrics(), 'nodejs_eventloop_lag_p50_seconds');
  assert.ok(p50 >= 0.009 && p50 < 0.02, `p50 of a free loop: ${p50} s`);
});

test('a block while idle shows at its whole length, even one that ends before the tick is due', async () => {
  const sampler = new LagSampler();
  const registry = new Registry();
  registerLoopLag(registry, sampler);
  await justAfterIdleTick(sampler);
  await registry.metrics(); // starts the scrape window after the wait
  // Right after a tick: the next one is due ~1 s later, long after the block is over.
  block(400);
  await sleep(1100);
  const text = await registry.metrics();
  const max = gaugeValue(text, 'nodejs_eventloop_lag_max_seconds');
  assert.ok(max >= 0.39 && max < 1.2, `a 400 ms block while idle read max ${max} s`);
  const lag = gaugeValue(text, 'nodejs_eventloop_lag_seconds');
  assert.ok(lag >= 0 && lag < 0.1, `setImmediate lag ${lag} s`);
});

test('a second scrape with no sample since the first keeps the figures of the first', async () => {
  const sampler = new LagSampler();
  const registry = new Registry();
  registerLoopLag(registry, sampler);
  await justAfterIdleTick(sampler); // idle: the next sample is a second away
  const first = gaugeValue(await registry.metrics(), 'nodejs_eventloop_lag_p50_seconds');
  assert.ok(first >= 0.009, `first scrape: ${first} s`);
  assert.equal(gaugeValue(await registry.metrics(), 'nodejs_eventloop_lag_p50_seconds'), first);
});
