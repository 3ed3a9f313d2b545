/**
 * Cron triggers: once per tick per cluster, one catch-up after downtime. Two schedulers stand in
 * for two nodes: on one embedded store, and each with its own connection to one PostgreSQL
 * schema, as nodes of a fleet are. The clock is injected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { Store } from '../src/control-plane/store/interface.js';
import { openPostgresStore } from '../src/control-plane/store/postgres.js';
import { type ScheduledEvent, Scheduler, type ScheduleTarget } from '../src/triggers/scheduler.js';
import { scratchSchema, TEST_POSTGRES_URL } from './helpers/postgres.js';
import { reachable } from './helpers/reachable.js';
import { tempDir } from './helpers/temp-dir.js';

const pgDown = await reachable(TEST_POSTGRES_URL);
if (pgDown) console.log(`# skipping the cron-on-PostgreSQL test: ${pgDown}`);

/**
 * Schedulers on an injected clock. `storeFor` gives each node its store: by default they share
 * one embedded store; on PostgreSQL each node has its own connection to one schema, as a fleet does.
 */
async function setup(storeFor?: (node: string) => Promise<Store>) {
  const dir = tempDir('cron');
  const store = await openEmbeddedStore(dir);
  const stores: Store[] = [];
  let clock = Date.parse('2026-11-24T10:00:30Z');
  const fired: { node: string; event: ScheduledEvent }[] = [];
  const notes: string[] = [];
  const node = async (name: string) => {
    const own = storeFor ? await storeFor(name) : store;
    if (own !== store) stores.push(own);
    return new Scheduler(
      own,
      async (_t, event) => {
        fired.push({ node: name, event });
      },
      (_t, _level, message) => notes.push(message),
      () => clock,
    );
  };
  const close = async () => {
    await store.close();
    for (const st of stores) await st.close();
  };
  return { store, fired, notes, node, close, advance: (ms: number) => (clock += ms), now: () => clock };
}

/** Two nodes wake for every tick of an hour, in either order or at once; each tick must fire once. */
async function hourOnTwoNodes(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  const a = await s.node('a');
  const b = await s.node('b');
  await a.set(target);
  await b.set(target);
  for (let minute = 0; minute < 60; minute++) {
    s.advance(60_000);
    if (minute % 3 === 0) await Promise.all([a.runDue(), b.runDue()]);
    else if (minute % 3 === 1) await b.runDue().then(() => a.runDue());
    else await a.runDue().then(() => b.runDue());
  }
  const ticks = s.fired.map((f) => f.event.scheduledTime);
  assert.equal(ticks.length, 60);
  assert.equal(new Set(ticks).size, 60, 'no tick fired twice');
  assert.ok(
    s.fired.some((f) => f.node === 'a') && s.fired.some((f) => f.node === 'b'),
    'either node may win',
  );
  a.close();
  b.close();
  await s.close();
}

const target: ScheduleTarget = {
  namespace: 'default',
  functionName: 'report',
  cron: '* * * * *',
  timezone: 'Europe/Berlin',
};

describe('scheduler', () => {
  it('fires each tick exactly once across two nodes', async () => {
    await hourOnTwoNodes(await setup());
  });

  it('fires each tick exactly once across two nodes sharing PostgreSQL', { skip: pgDown }, async () => {
    const schema = scratchSchema('kylix_cron');
    await hourOnTwoNodes(await setup(() => openPostgresStore({ url: TEST_POSTGRES_URL, schema })));
  });

  it('after downtime runs one catch-up and logs the rest as missed', async () => {
    const s = await setup();
    const a = await s.node('a');
    await a.set(target);
    a.close();
    s.advance(10 * 60_000); // ten ticks pass while no node runs
    const again = await s.node('a');
    await again.set(target);
    assert.equal(s.fired.length, 1);
    assert.equal(s.fired[0]?.event.catchUp, true);
    assert.equal(s.fired[0]?.event.scheduledTime, Date.parse('2026-11-24T10:10:00Z'));
    assert.match(s.notes[0] ?? '', /Missed 9 scheduled run/);
    again.close();
    await s.store.close();
  });

  it('keeps its schedule when the state store fails at a tick, and runs the tick once it answers', async () => {
    const dir = tempDir('cron-down');
    const real = await openEmbeddedStore(dir);
    let down = false;
    // The store as a fleet's node sees it when PostgreSQL stops: every read and write fails.
    const store = new Proxy(real, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) =>
          down && prop !== 'close' ? Promise.reject(new Error('connect ECONNREFUSED')) : v.apply(t, args);
      },
    });
    let clock = Date.parse('2026-11-24T10:00:59.990Z');
    const fired: ScheduledEvent[] = [];
    const notes: string[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const scheduler = new Scheduler(
      store,
      async (_t, event) => {
        fired.push(event);
      },
      (_t, _level, message) => notes.push(message),
      () => clock,
    );
    await scheduler.set(target);
    // Down at the 10:01 tick: the node notes it and stays up (an unhandled rejection would end it).
    down = true;
    await sleep(100);
    assert.ok(
      notes.some((n) => /could not be claimed.*ECONNREFUSED/.test(n)),
      notes.join('\n'),
    );
    assert.equal(fired.length, 0);
    // Back a minute later: the 10:01 tick runs, late, once.
    down = false;
    clock += 60_000;
    await sleep(100);
    assert.deepEqual(
      fired.map((e) => new Date(e.scheduledTime).toISOString()),
      ['2026-11-24T10:01:00.000Z'],
    );
    // A schedule set while the store is down is still armed.
    scheduler.close();
    down = true;
    const other = { ...target, functionName: 'other' };
    await assert.rejects(scheduler.set(other));
    down = false;
    clock += 60_000;
    await sleep(100);
    assert.ok(fired.length >= 2, 'the schedule set while the store was down never fired');
    scheduler.close();
    await real.close();
  });

  it('follows the time zone of the schedule', async () => {
    const s = await setup();
    const daily = await s.node('a');
    // 09:00 in Berlin is 08:00 UTC in November.
    await daily.set({ ...target, cron: '0 9 * * *' });
    s.advance(24 * 3_600_000);
    await daily.runDue();
    assert.equal(new Date(s.fired[0]!.event.scheduledTime).toISOString(), '2026-11-25T08:00:00.000Z');
    daily.close();
    await s.store.close();
  });
});
