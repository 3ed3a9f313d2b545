import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogEntry } from '../src/resources/api-types.js';
import { DevLogPacer, summaryLine } from '../src/server/dev-log.js';

const request = (status: number): LogEntry => ({
  time: new Date(0).toISOString(),
  level: 'info',
  message: `GET / ${status} 1ms warm`,
  source: 'platform',
  invocation: { status, durationMs: 1, cold: false, startupMs: 0 },
});
const consoleLine: LogEntry = {
  time: new Date(0).toISOString(),
  level: 'log',
  message: 'hi',
  source: 'function',
};

test('the dev terminal shows a few request lines per second per function and sums up the rest', () => {
  let now = 10_000;
  const lines: string[] = [];
  const summaries: string[] = [];
  const pacer = new DevLogPacer(
    (_ns, fn, e) => lines.push(`${fn} ${e.message}`),
    (_ns, fn, held, byStatus) => summaries.push(`${fn} ${summaryLine(held, byStatus)}`),
    () => now,
    3,
  );
  for (let i = 0; i < 10; i++) pacer.entry('default', 'a', request(i < 8 ? 200 : 503));
  for (let i = 0; i < 2; i++) pacer.entry('default', 'b', request(200));
  // Console output is never held back, however many requests came before it.
  pacer.entry('default', 'a', consoleLine);
  assert.equal(lines.filter((l) => l.startsWith('a ')).length, 4);
  assert.equal(lines.filter((l) => l.startsWith('b ')).length, 2);
  assert.deepEqual(summaries, []);
  // The next second's first request writes the last second's summary, then is shown itself.
  now += 1000;
  pacer.entry('default', 'a', request(200));
  assert.deepEqual(summaries, ['a 7 more requests in that second (200 × 5, 503 × 2)']);
  assert.equal(lines.at(-1), 'a GET / 200 1ms warm');
  // What is held when the node stops is still summed up.
  for (let i = 0; i < 5; i++) pacer.entry('default', 'b', request(404));
  pacer.close();
  assert.equal(summaries.at(-1), 'b 2 more requests in that second (404 × 2)');
  assert.equal(summaries.length, 2);
});

test('a burst that ends leaves its summary behind, written once its second is over', () => {
  let now = 5_000;
  const summaries: string[] = [];
  const pacer = new DevLogPacer(
    () => {},
    (_ns, fn, held, byStatus) => summaries.push(`${fn} ${summaryLine(held, byStatus)}`),
    () => now,
    1,
  );
  for (let i = 0; i < 3; i++) pacer.entry('default', 'a', request(200));
  pacer.sweep();
  assert.deepEqual(summaries, [], 'the second is not over yet');
  now += 1000;
  pacer.sweep();
  assert.deepEqual(summaries, ['a 2 more requests in that second (200 × 2)']);
  pacer.sweep();
  assert.equal(summaries.length, 1, 'written once');
  pacer.close();
});

test('a summary reads as a number by status', () => {
  assert.equal(
    summaryLine(
      1204,
      new Map([
        [503, 4],
        [200, 1200],
      ]),
    ),
    '1,204 more requests in that second (200 × 1,200, 503 × 4)',
  );
});
