import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineRing } from '../src/control-plane/line-ring.js';

const all = (r: LineRing) => {
  const out: string[] = [];
  r.newestFirst((l) => {
    out.push(l);
    return true;
  });
  return out.reverse();
};

test('the line ring keeps the newest lines, in order, within its line and byte bounds', () => {
  // Deterministic pseudo-random lines: empty, ASCII, multi-byte, and some near the ring's size.
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pieces = ['a', 'é', '€', '😀', '"', '\\'];
  for (const [maxLines, maxBytes] of [
    [5, 64],
    [50, 1000],
    [1000, 40_000],
  ] as const) {
    const ring = new LineRing(maxLines, maxBytes);
    const pushed: string[] = [];
    for (let i = 0; i < 5000; i++) {
      // Empty lines, short ones, and now and then one near (or over) the whole ring's size.
      const kind = rnd(20);
      const len = kind === 0 ? rnd(maxBytes + 8) : kind < 3 ? rnd(maxBytes / 2) : rnd(40);
      let line = kind === 3 ? '' : `${i}:`;
      while (line.length > 0 && line.length < len) line += pieces[rnd(pieces.length)];
      ring.push(line);
      if (Buffer.byteLength(line) <= maxBytes) pushed.push(line);
      const kept = all(ring);
      // A suffix of what was pushed (nothing torn, nothing reordered)…
      assert.deepEqual(kept, pushed.slice(pushed.length - kept.length), `after line ${i}`);
      // …within the bounds…
      assert.ok(kept.length <= maxLines);
      const bytes = kept.reduce((n, l) => n + Buffer.byteLength(l), 0);
      assert.ok(bytes <= maxBytes);
      // …and never less than the newest line and whatever else fits in half the ring.
      let fits = 0;
      let used = 0;
      for (let j = pushed.length - 1; j >= 0 && fits < maxLines; j--) {
        used += Buffer.byteLength(pushed[j]!);
        if (used > maxBytes / 2 && fits > 0) break;
        fits++;
      }
      // (A line near the ring's size may have pushed out everything else.)
      if (Buffer.byteLength(line) <= maxBytes / 4)
        assert.ok(
          kept.length >= Math.min(fits, pushed.length),
          `after line ${i}: kept ${kept.length} < ${fits}`,
        );
    }
  }
});

test('an empty line where the next line starts does not keep the lines that line overwrote', () => {
  const ring = new LineRing(100, 16);
  for (const l of ['aaaa', '', 'bbbbbbbb', 'cccc', 'xxxx', 'yy']) ring.push(l);
  assert.deepEqual(all(ring), ['cccc', 'xxxx', 'yy']);
});

test('a line longer than the whole ring is not kept, and the rest stay', () => {
  const ring = new LineRing(10, 32);
  ring.push('one');
  ring.push('x'.repeat(33));
  ring.push('two');
  assert.deepEqual(all(ring), ['one', 'two']);
});

test('reading stops when the reader has enough', () => {
  const ring = new LineRing(10, 1024);
  for (let i = 0; i < 10; i++) ring.push(String(i));
  const seen: string[] = [];
  ring.newestFirst((l) => {
    seen.push(l);
    return seen.length < 3;
  });
  assert.deepEqual(seen, ['9', '8', '7']);
});
