/**
 * Cron triggers: once per tick per cluster, one catch-up after downtime. Two schedulers sharing
 * one state store stand in for two nodes sharing the fleet store; the clock is injected.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import { type ScheduledEvent, Scheduler, type ScheduleTarget } from '../src/triggers/scheduler.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'kylix-cron-'));
  dirs.push(dir);
  const store = await openEmbeddedStore(dir);
  let clock = Date.parse('2026-11-24T10:00:30Z');
  const fired: { node: string; event: ScheduledEvent }[] = [];
  const notes: string[] = [];
  const node = (name: string) =>
    new Scheduler(
      store,
      async (_t, event) => {
        fired.push({ node: name, event });
      },
      (_t, _level, message) => notes.push(message),
      () => clock,
    );
  return { store, fired, notes, node, advance: (ms: number) => (clock += ms), now: () => clock };
}

const target: ScheduleTarget = {
  namespace: 'default',
  functionName: 'report',
  cron: '* * * * *',
  timezone: 'Europe/Berlin',
};

describe('scheduler', () => {
  it('fires each tick exactly once across two nodes', async () => {
    const s = await setup();
    const a = s.node('a');
    const b = s.node('b');
    await a.set(target);
    await b.set(target);
    for (let minute = 0; minute < 60; minute++) {
      s.advance(60_000);
      // Both nodes wake for the same tick, in either order or at once.
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
    await s.store.close();
  });

  it('after downtime runs one catch-up and logs the rest as missed', async () => {
    const s = await setup();
    const a = s.node('a');
    await a.set(target);
    a.close();
    s.advance(10 * 60_000); // ten ticks pass while no node runs
    const again = s.node('a');
    await again.set(target);
    assert.equal(s.fired.length, 1);
    assert.equal(s.fired[0]?.event.catchUp, true);
    assert.equal(s.fired[0]?.event.scheduledTime, Date.parse('2026-11-24T10:10:00Z'));
    assert.match(s.notes[0] ?? '', /Missed 9 scheduled run/);
    again.close();
    await s.store.close();
  });

  it('follows the time zone of the schedule', async () => {
    const s = await setup();
    const daily = s.node('a');
    // 09:00 in Berlin is 08:00 UTC in November.
    await daily.set({ ...target, cron: '0 9 * * *' });
    s.advance(24 * 3_600_000);
    await daily.runDue();
    assert.equal(new Date(s.fired[0]!.event.scheduledTime).toISOString(), '2026-11-25T08:00:00.000Z');
    daily.close();
    await s.store.close();
  });
});
