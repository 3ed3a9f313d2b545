/**
 * The reconcilers' work queue, on a fake clock: keys are deduplicated while they wait, one key
 * never runs twice at once, failures are retried per key with growing, capped delays, and a
 * success forgets them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from '../src/control-plane/work-queue.js';
import { FakeClock, flush } from './helpers/fake-clock.js';

/** A promise with its resolve, for work that finishes when the test says. */
function gate() {
  let open = () => {};
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

describe('work queue', () => {
  it('runs a key added several times before a worker takes it once', async () => {
    const runs: string[] = [];
    const q = new WorkQueue({ work: async (k) => void runs.push(k), clock: new FakeClock() });
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    await q.settled();
    assert.deepEqual(runs.sort(), ['a', 'b']);
  });

  it('never reconciles one key twice at once, and runs it once more when added meanwhile', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    const gates = [gate(), gate()];
    const q = new WorkQueue({
      work: async () => {
        active++;
        most = Math.max(most, active);
        await gates[runs++]?.promise;
        active--;
      },
      clock: new FakeClock(),
    });
    q.add('ns/fn');
    await flush();
    assert.equal(runs, 1);
    // Three changes while it runs: one more run, after this one.
    q.add('ns/fn');
    q.add('ns/fn');
    q.add('ns/fn');
    await flush();
    assert.equal(runs, 1, 'the second run waits for the first');
    gates[0]!.open();
    await flush();
    assert.equal(runs, 2);
    gates[1]!.open();
    await q.settled();
    assert.equal(runs, 2);
    assert.equal(most, 1);
  });

  it('runs different keys side by side', async () => {
    let active = 0;
    let most = 0;
    const g = gate();
    const q = new WorkQueue({
      work: async () => {
        active++;
        most = Math.max(most, active);
        await g.promise;
        active--;
      },
      clock: new FakeClock(),
    });
    for (const k of ['a', 'b', 'c']) q.add(k);
    await flush();
    assert.equal(most, 3);
    g.open();
    await q.settled();
  });

  it('retries a failing key with delays that double up to the cap, then forgets them on success', async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const errors: number[] = [];
    const q = new WorkQueue({
      work: async () => {
        attempts++;
        if (attempts <= 8) throw new Error('backend down');
      },
      onError: (_k, _e, delay) => errors.push(delay),
      backoff: { initialMs: 100, maxMs: 2000 },
      clock,
    });
    q.add('db');
    await q.settled();
    assert.equal(attempts, 1);
    for (let i = 0; i < 8; i++) await clock.advance(2000);
    assert.equal(attempts, 9);
    assert.deepEqual(errors, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    assert.equal(q.failuresOf('db'), 0, 'a success forgets the failures');
    assert.equal(clock.pending, 0, 'and leaves no retry behind');
    // The next failure starts from the first delay again.
    attempts = 0;
    q.add('db');
    await q.settled();
    assert.equal(errors.at(-1), 100);
  });

  it('keeps failures per key', async () => {
    const clock = new FakeClock();
    const delays: Record<string, number[]> = { a: [], b: [] };
    const q = new WorkQueue({
      work: async (k) => {
        if (k === 'a' || clock.now() < 1000) throw new Error('no');
      },
      onError: (k, _e, d) => delays[k]!.push(d),
      backoff: { initialMs: 100, maxMs: 10_000 },
      clock,
    });
    q.add('a');
    q.add('b');
    await q.settled();
    await clock.advance(100);
    await clock.advance(200);
    await clock.advance(400);
    await clock.advance(800);
    assert.deepEqual(delays.a, [100, 200, 400, 800, 1600]);
    // b succeeded at 1500 ms (its retry after 800 ms) and stopped retrying.
    assert.deepEqual(delays.b, [100, 200, 400, 800]);
    assert.equal(q.failuresOf('b'), 0);
  });

  it('a change that succeeds cancels the pending retry', async () => {
    const clock = new FakeClock();
    let fail = true;
    let runs = 0;
    const q = new WorkQueue({
      work: async () => {
        runs++;
        if (fail) throw new Error('no');
      },
      clock,
    });
    q.add('k');
    await q.settled();
    assert.equal(clock.pending, 1);
    fail = false;
    q.add('k');
    await q.settled();
    assert.equal(clock.pending, 0);
    await clock.advance(60_000);
    assert.equal(runs, 2);
  });

  it('stop cancels retries and takes no more work', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const q = new WorkQueue({
      work: async () => {
        runs++;
        throw new Error('no');
      },
      clock,
    });
    q.add('k');
    await q.settled();
    q.stop();
    assert.equal(clock.pending, 0);
    q.add('k');
    await clock.advance(60_000);
    assert.equal(runs, 1);
  });

  it('honours a concurrency limit', async () => {
    let active = 0;
    let most = 0;
    const q = new WorkQueue({
      work: async () => {
        active++;
        most = Math.max(most, active);
        await flush();
        active--;
      },
      concurrency: 2,
      clock: new FakeClock(),
    });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.settled();
    assert.equal(most, 2);
  });
});
