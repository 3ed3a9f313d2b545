/**
 * FrameWriter: a lone frame leaves at once; frames after it in the same turn of the event loop are
 * corked and leave together in the turn's check phase; order is kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { FrameWriter } from '../src/sandbox/channel.js';

/** A sink that records what reached the "socket": writes made while uncorked, and flushes. */
function recordingSink() {
  const events: string[] = [];
  let corked = 0;
  let held: string[] = [];
  return {
    events,
    sink: {
      write(bytes: Uint8Array) {
        const name = String.fromCharCode(...bytes);
        if (corked > 0) held.push(name);
        else events.push(`write ${name}`);
      },
      cork() {
        corked++;
      },
      uncork() {
        corked--;
        if (corked === 0 && held.length > 0) {
          events.push(`flush ${held.join(',')}`);
          held = [];
        }
      },
    },
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe('FrameWriter', () => {
  it('writes a lone frame at once, without waiting for the end of the turn', () => {
    const { events, sink } = recordingSink();
    new FrameWriter(sink).write(bytes('a'));
    assert.deepEqual(events, ['write a']);
  });

  it('corks the frames after the first of a turn and flushes them together in its check phase', async () => {
    const { events, sink } = recordingSink();
    const w = new FrameWriter(sink);
    for (const f of ['a', 'b', 'c', 'd']) w.write(bytes(f));
    assert.deepEqual(events, ['write a'], 'b, c and d wait for the end of the turn');
    await turn();
    assert.deepEqual(events, ['write a', 'flush b,c,d']);
  });

  it('starts afresh every turn, in order', async () => {
    const { events, sink } = recordingSink();
    const w = new FrameWriter(sink);
    w.write(bytes('a'));
    await turn();
    w.write(bytes('b'));
    w.write(bytes('c'));
    await turn();
    w.write(bytes('d'));
    await turn();
    assert.deepEqual(events, ['write a', 'write b', 'flush c', 'write d']);
  });
});
