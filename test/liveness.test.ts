/**
 * Liveness: a sandbox process that stops answering pings is declared dead; one that answers, one
 * that is heard from otherwise, or one whose supervisor's own loop was held, is not. Time is a fake
 * clock's: ticks come when the test moves it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Clock } from '../src/control-plane/clock.js';
import { Liveness } from '../src/runtime/liveness.js';
import { FakeClock } from './helpers/fake-clock.js';

/** A Liveness with a 200 ms deadline (a tick every 50 ms) on a fake clock, and what it did. */
function watch(opts: { busy?: () => boolean; answer?: boolean; clock?: Clock } = {}) {
  const clock = opts.clock ?? new FakeClock();
  const pings: number[] = [];
  const dead: string[] = [];
  const l: Liveness = new Liveness(
    (seq) => {
      pings.push(seq);
      if (opts.answer) queueMicrotask(() => assert.equal(l.answer(seq), true));
    },
    opts.busy ?? (() => true),
    (why) => dead.push(why),
    200,
    clock,
  );
  return { l, clock, pings, dead };
}

describe('Liveness', () => {
  it('ends a busy process that does not answer within the deadline, once', async () => {
    const { clock, pings, dead } = watch();
    const fake = clock as FakeClock;
    await fake.advance(250);
    assert.deepEqual(pings, [1]);
    assert.deepEqual(dead, [], 'dead before the deadline passed');
    await fake.advance(100);
    assert.equal(dead.length, 1);
    assert.match(dead[0] ?? '', /no answer to a liveness check within 200 ms/);
    await fake.advance(1000);
    assert.equal(dead.length, 1, 'declared dead twice');
    assert.equal(fake.pending, 0, 'a timer left after it was declared dead');
  });

  it('keeps a process that answers, and pings it again', async () => {
    const { l, clock, pings, dead } = watch({ answer: true });
    await (clock as FakeClock).advance(2000);
    l.stop();
    assert.deepEqual(dead, []);
    assert.ok(pings.length >= 10, `pinged ${pings.length} times`);
    assert.equal((clock as FakeClock).pending, 0, 'a timer left after stop()');
  });

  it('keeps a process it hears from while its answer waits behind other messages', async () => {
    const { l, clock, dead } = watch();
    const fake = clock as FakeClock;
    for (let i = 0; i < 20; i++) {
      await fake.advance(100);
      l.heard();
    }
    assert.deepEqual(dead, []);
    await fake.advance(300);
    assert.equal(dead.length, 1, 'silence after the messages stopped is still a hang');
  });

  it('refuses an answer to no ping outstanding', async () => {
    const { l, clock, pings } = watch();
    assert.equal(l.answer(1), false, 'nothing sent yet');
    await (clock as FakeClock).advance(50);
    assert.deepEqual(pings, [1]);
    assert.equal(l.answer('1'), false);
    assert.equal(l.answer(2), false, 'a seq it was never sent');
    assert.equal(l.answer(1), true);
    assert.equal(l.answer(1), false, 'answered twice');
    l.stop();
  });

  it('does not ping an idle process', async () => {
    const { l, clock, pings, dead } = watch({ busy: () => false });
    await (clock as FakeClock).advance(1000);
    l.stop();
    assert.deepEqual(pings, []);
    assert.deepEqual(dead, []);
  });

  it('does not judge a process by a tick its own loop held back', () => {
    // A clock whose timer the test fires by hand, as late as it likes.
    let now = 0;
    let due: (() => void) | undefined;
    const clock: Clock = {
      now: () => now,
      after: (_ms, fn) => {
        due = fn;
        return () => {
          due = undefined;
        };
      },
    };
    const { l, dead, pings } = watch({ clock });
    now = 50;
    due?.();
    assert.deepEqual(pings, [1]);
    // The supervisor's loop was held for a second: the answer may be waiting unread.
    now = 1050;
    due?.();
    assert.deepEqual(dead, [], 'judged on a late tick');
    // Still no answer a full deadline after that: now it is dead.
    for (now = 1100; now <= 1300; now += 50) due?.();
    assert.equal(dead.length, 1);
    l.stop();
  });
});
