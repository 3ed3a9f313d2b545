/**
 * Liveness: a sandbox process that stops answering pings is declared dead; one that answers, or
 * whose supervisor's own loop was held, is not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Liveness } from '../src/runtime/liveness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Liveness', () => {
  it('ends a busy process that does not answer within the deadline, once', async () => {
    const pings: number[] = [];
    const dead: string[] = [];
    const l = new Liveness(
      (seq) => pings.push(seq),
      () => true,
      (why) => dead.push(why),
      200,
    );
    await sleep(700);
    l.stop();
    assert.deepEqual(pings, [1]);
    assert.equal(dead.length, 1);
    assert.match(dead[0] ?? '', /no answer to a liveness check within 200 ms/);
  });

  it('keeps a process that answers, and pings it again', async () => {
    const dead: string[] = [];
    let seen = 0;
    const l: Liveness = new Liveness(
      (seq) => {
        seen = seq;
        setImmediate(() => assert.equal(l.answer(seq), true));
      },
      () => true,
      (why) => dead.push(why),
      200,
    );
    await sleep(800);
    l.stop();
    assert.deepEqual(dead, []);
    assert.ok(seen >= 3, `pinged ${seen} times`);
  });

  it('refuses an answer to no ping outstanding', () => {
    let seq = 0;
    const l = new Liveness(
      (s) => (seq = s),
      () => true,
      () => {},
      200,
    );
    l.stop();
    assert.equal(l.answer(1), false, 'nothing sent yet');
    assert.equal(l.answer('1'), false);
    (l as unknown as { tick(): void }).tick();
    assert.equal(seq, 1);
    assert.equal(l.answer(2), false, 'a seq it was never sent');
    assert.equal(l.answer(1), true);
    assert.equal(l.answer(1), false, 'answered twice');
  });

  it('does not ping an idle process', async () => {
    const pings: number[] = [];
    const l = new Liveness(
      (seq) => pings.push(seq),
      () => false,
      () => assert.fail('declared dead'),
      200,
    );
    await sleep(400);
    l.stop();
    assert.deepEqual(pings, []);
  });

  it('does not judge a process by a tick its own loop held back', async () => {
    const dead: string[] = [];
    const l = new Liveness(
      () => {},
      () => true,
      (why) => dead.push(why),
      200,
    );
    await sleep(80);
    // The supervisor's loop is held for longer than the deadline: the answer may be waiting unread.
    const until = Date.now() + 500;
    while (Date.now() < until);
    await sleep(60);
    assert.deepEqual(dead, [], 'judged on a late tick');
    // Still no answer a full deadline later: now it is dead.
    await sleep(400);
    l.stop();
    assert.equal(dead.length, 1);
  });
});
