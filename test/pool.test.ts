/**
 * Scaling decisions of one revision's pool, with a fake sandbox and an injected clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RevisionTarget } from '../src/resources/serving.js';
import type { InstanceChannel } from '../src/runtime/instance-channel.js';
import { type GrowthBounds, PoolBusyError, RevisionPool, type ScalingPolicy } from '../src/runtime/pool.js';

function fakePool(policy: Partial<ScalingPolicy>, bounds?: GrowthBounds) {
  let clock = 1_000_000;
  let n = 0;
  const stopped: string[] = [];
  const pending: (() => void)[] = [];
  const owner = {} as RevisionTarget;
  const pool = new RevisionPool(
    owner,
    { minInstances: 0, maxInstances: 3, targetConcurrency: 1, idleSeconds: 10, ...policy },
    // Instance starts complete when the test says so, to observe requests waiting for them.
    () =>
      new Promise((resolve) =>
        pending.push(() => resolve({ id: `i${++n}`, channel: {} as InstanceChannel, startupMs: 3 })),
      ),
    async (id) => {
      stopped.push(id);
    },
    () => clock,
    bounds,
  );
  return {
    pool,
    starting: () => pending.length,
    stopped,
    finishStarts: () => {
      for (const f of pending.splice(0)) f();
    },
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('revision pool', () => {
  it('starts an instance for the first request, which waits for it and counts as cold', async () => {
    const f = fakePool({});
    const lease = f.pool.acquire();
    f.advance(40);
    f.finishStarts();
    const l = await lease;
    assert.equal(l.cold, true);
    assert.equal(l.waitedMs, 40);
    assert.equal(f.pool.stats().instances, 1);
  });

  it('adds instances while all are at target concurrency, up to maxInstances, serving meanwhile', async () => {
    const f = fakePool({ maxInstances: 2 });
    const first = f.pool.acquire();
    f.finishStarts();
    await first;
    // Busy: a second instance starts, but this request is served by the busy one rather than queued.
    const second = await f.pool.acquire();
    assert.equal(second.cold, false);
    f.finishStarts();
    await new Promise((r) => setImmediate(r));
    assert.equal(f.pool.stats().instances, 2);
    await f.pool.acquire();
    await f.pool.acquire();
    f.finishStarts();
    assert.equal(f.pool.stats().instances, 2, 'never above maxInstances');
    assert.equal(f.pool.inFlight(), 4);
  });

  it('stops instances idle for idleSeconds, down to minInstances', async () => {
    const f = fakePool({ minInstances: 1, maxInstances: 3, idleSeconds: 10 });
    const leases = [f.pool.acquire()];
    f.finishStarts();
    await leases[0];
    leases.push(f.pool.acquire(), f.pool.acquire());
    f.finishStarts();
    await new Promise((r) => setImmediate(r));
    for (const l of await Promise.all(leases)) l.release();
    assert.equal(f.pool.stats().instances, 3);
    f.advance(9_000);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 3, 'not idle long enough yet');
    f.advance(2_000);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 1);
    assert.equal(f.stopped.length, 2);
  });

  it('scales to zero by default, and never stops an instance with requests in flight', async () => {
    const f = fakePool({ idleSeconds: 1 });
    const lease = f.pool.acquire();
    f.finishStarts();
    const l = await lease;
    f.advance(5_000);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 1, 'busy instance kept');
    l.release();
    f.advance(1_001);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 0);
  });

  it('releases an instance that never served (the one a deploy starts) after 30 s, even with a longer idleSeconds', async () => {
    const f = fakePool({ idleSeconds: 300 });
    const warm = f.pool.warmUp();
    f.finishStarts();
    await warm;
    f.advance(29_000);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 1);
    f.advance(2_000);
    f.pool.reap();
    assert.equal(f.pool.stats().instances, 0);
  });

  it('refuses waiting requests when the instance cannot start', async () => {
    const owner = {} as RevisionTarget;
    const pool = new RevisionPool(
      owner,
      { minInstances: 0, maxInstances: 1, targetConcurrency: 1, idleSeconds: 1 },
      () => Promise.reject(new Error('module threw')),
      async () => {},
      Date.now,
    );
    await assert.rejects(pool.acquire(), /module threw/);
  });

  it('starts no more instances than the cores they can use, whatever maxInstances says', async () => {
    const f = fakePool({ maxInstances: 10 }, { maxByCores: 2, cpuAvailable: () => true });
    const first = f.pool.acquire();
    f.finishStarts();
    await first;
    for (let i = 0; i < 20; i++) await f.pool.acquire();
    f.finishStarts();
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await f.pool.acquire();
    f.finishStarts();
    assert.equal(f.pool.stats().instances, 2);
  });

  it('adds no instance while the node is CPU-saturated, but still starts the first, and a sibling for a stalled one', async () => {
    let saturated = true;
    const f = fakePool({ maxInstances: 10 }, { maxByCores: 8, cpuAvailable: () => !saturated });
    const first = f.pool.acquire();
    assert.equal(f.starting(), 1, 'a cold start is never held back');
    f.finishStarts();
    (await first).release();
    // Busy and finishing requests: a second instance would only take CPU from them.
    const busy = await f.pool.acquire();
    (await f.pool.acquire()).release();
    f.advance(900);
    await f.pool.acquire();
    assert.equal(
      f.starting(),
      0,
      'a busy instance that finishes requests gets no sibling on a saturated CPU',
    );
    // Nothing finished for over a second with requests in flight: stalled, so a sibling starts.
    f.advance(200);
    await f.pool.acquire();
    assert.equal(f.starting(), 1, 'a sibling for a stalled instance starts anyway');
    busy.release();
    f.finishStarts();
    await new Promise((r) => setImmediate(r));
    await f.pool.acquire();
    await f.pool.acquire();
    assert.equal(f.starting(), 0, 'busy, but no CPU to start a third');
    saturated = false;
    await f.pool.acquire();
    assert.equal(f.starting(), 1);
  });

  it('an instance that was idle and then gets a burst is busy, not stalled: no sibling on a saturated CPU', async () => {
    const f = fakePool({ maxInstances: 10 }, { maxByCores: 8, cpuAvailable: () => false });
    const first = f.pool.acquire();
    f.finishStarts();
    (await first).release();
    f.advance(5000);
    await f.pool.acquire();
    await f.pool.acquire();
    assert.equal(f.starting(), 0);
    f.advance(1100);
    await f.pool.acquire();
    assert.equal(f.starting(), 1, 'busy for over a second without finishing anything: stalled');
  });

  it('bounds the requests waiting for a cold start, refusing the rest with PoolBusyError', async () => {
    const f = fakePool({ maxInstances: 1, targetConcurrency: 3 });
    const waiting = Array.from({ length: 3 }, () => f.pool.acquire());
    await assert.rejects(f.pool.acquire(), PoolBusyError);
    f.finishStarts();
    const leases = await Promise.all(waiting);
    assert.ok(leases.every((l) => l.cold));
  });

  it('forgets the waiters whose clients left: they neither count against the bound nor get an instance', async () => {
    const f = fakePool({ maxInstances: 1, targetConcurrency: 2 });
    const clients = [{ destroyed: false }, { destroyed: false }];
    const waiting = clients.map((c) => f.pool.lend(c) as Promise<unknown>);
    clients[0]!.destroyed = true;
    // The bound is full of waiters, one of whose clients has gone: the newcomer takes its place.
    const newcomer = f.pool.lend({ destroyed: false });
    assert.ok(newcomer instanceof Promise);
    await assert.rejects(waiting[0]!, /the client went away/);
    f.finishStarts();
    await Promise.all([waiting[1], newcomer]);
    assert.equal(f.pool.inFlight(), 2, 'only the two clients still there hold the instance');
  });
});
