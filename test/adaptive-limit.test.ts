/**
 * The adaptive concurrency limit, driven by latencies reported with an injected clock: it shrinks
 * when latency rises, grows back when it falls, never goes below 1 or above its hard cap, and does
 * not grow on traffic that does not use it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveLimit } from '../src/gateway/adaptive-limit.js';

/** Feeds `windows` windows of 20 samples of `rttMs`, each at `inFlight` (the limit itself by default). */
function feed(
  l: AdaptiveLimit,
  clock: { t: number },
  windows: number,
  rttMs: number,
  inFlight?: number,
): void {
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < 20; i++) {
      clock.t += 100 / 20;
      l.sample(rttMs, clock.t, inFlight ?? l.limit);
    }
  }
}

describe('adaptive concurrency limit', () => {
  it('shrinks while latency rises past its tolerance, and grows back when latency returns', () => {
    const clock = { t: 0 };
    const l = new AdaptiveLimit({ initial: 100 });
    feed(l, clock, 5, 10);
    const steady = l.limit;
    assert.ok(l.baseline > 9 && l.baseline < 11, `baseline ${l.baseline}`);
    assert.ok(steady >= 100, `steady ${steady}`);
    feed(l, clock, 20, 60);
    const shrunk = l.limit;
    assert.ok(shrunk < steady / 2, `shrunk to ${shrunk} from ${steady}`);
    feed(l, clock, 40, 10);
    assert.ok(l.limit > shrunk * 1.5, `grew back to ${l.limit} from ${shrunk}`);
  });

  it('comes back to where it was within about a second once latency is at its baseline again', () => {
    const clock = { t: 0 };
    const l = new AdaptiveLimit({ initial: 64, max: 1000 });
    feed(l, clock, 5, 10);
    // A burst: latency far past tolerance pulls the limit down.
    feed(l, clock, 20, 80);
    const shrunk = l.limit;
    assert.ok(shrunk <= 20, `shrunk to ${shrunk}`);
    // Twelve 100 ms windows at the baseline latency, each using the limit.
    feed(l, clock, 12, 10);
    assert.ok(l.limit >= 64, `back to ${l.limit} from ${shrunk} after 1.2 s`);
    // Latency above the baseline but within tolerance: growth slows to √limit of headroom.
    const slower = l.baseline * 1.6;
    feed(l, clock, 1, slower);
    const before = l.limit;
    feed(l, clock, 1, slower);
    assert.ok(l.limit - before <= Math.ceil(0.2 * Math.sqrt(before)) + 1, `${before} -> ${l.limit}`);
  });

  it('never goes below 1, however slow the function becomes', () => {
    const clock = { t: 0 };
    const l = new AdaptiveLimit({ initial: 10 });
    feed(l, clock, 3, 1);
    let rtt = 1;
    for (let i = 0; i < 200; i++) {
      rtt *= 1.5;
      feed(l, clock, 1, rtt);
    }
    assert.equal(l.limit, 1);
  });

  it('never exceeds its hard cap (spec.limits.maxConcurrency), also when the cap is lowered', () => {
    const clock = { t: 0 };
    const l = new AdaptiveLimit({ initial: 10, max: 50 });
    feed(l, clock, 200, 5);
    assert.equal(l.limit, 50);
    l.setMax(20);
    assert.equal(l.limit, 20);
    feed(l, clock, 50, 5);
    assert.equal(l.limit, 20);
  });

  it('does not grow on traffic that uses less than half of it', () => {
    const clock = { t: 0 };
    const l = new AdaptiveLimit({ initial: 100 });
    feed(l, clock, 100, 5, 10);
    assert.equal(l.limit, 100);
  });

  it('changes at most once per window, however many requests finish', () => {
    const l = new AdaptiveLimit({ initial: 100 });
    for (let i = 0; i < 10_000; i++) l.sample(1000, 50, 100);
    assert.equal(l.limit, 100, 'all samples in the first window: no update yet');
  });
});
