/**
 * The control channel between the supervisor and a sandbox process (sandbox/control.ts): JSON
 * messages in frames, in order both ways; a message over the reader's limit, one that is not JSON,
 * or a frame of another type breaks the channel at once, without reading the rest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, frame, frameHeader } from '../src/sandbox/channel.js';
import { ControlChannel, fitControlText, MAX_CONTROL_TEXT } from '../src/sandbox/control.js';
import { eventually } from './helpers/eventually.js';
import { socketPair } from './helpers/socket-pair.js';

type Message = { type: string; n?: number; text?: string };

/** The supervisor's end as a ControlChannel that records what it reads; the sandbox's as a raw socket. */
async function supervisorEnd(maxPayload = 1024) {
  const pair = await socketPair();
  const got: Message[] = [];
  const broken: string[] = [];
  const channel = new ControlChannel<Message, Message>(
    pair.ours,
    (m) => got.push(m),
    (why) => broken.push(why),
    maxPayload,
  );
  return { pair, channel, got, broken };
}

describe('control channel', () => {
  it('carries messages both ways, in order, several in one turn', async () => {
    const { pair, channel, got } = await supervisorEnd();
    const received: Message[] = [];
    const peer = new ControlChannel<Message, Message>(
      pair.theirs,
      (m) => received.push(m),
      () => undefined,
    );
    for (let n = 0; n < 5; n++) peer.send({ type: 'log', n, text: 'é'.repeat(n) });
    channel.send({ type: 'start', n: 1 });
    channel.send({ type: 'stop', n: 2 });
    await eventually(() => got.length === 5 && received.length === 2);
    assert.deepEqual(
      got.map((m) => m.n),
      [0, 1, 2, 3, 4],
    );
    assert.equal(got[4]?.text, 'éééé');
    assert.deepEqual(received, [
      { type: 'start', n: 1 },
      { type: 'stop', n: 2 },
    ]);
    pair.done();
  });

  it('breaks on a message announced over the limit, before its bytes arrive', async () => {
    const { pair, channel, got, broken } = await supervisorEnd(1024);
    // Only the header of a 1 GiB message: it is refused on the header alone.
    pair.theirs.write(frameHeader(F.CONTROL, 0, 2 ** 30));
    await eventually(() => broken.length === 1);
    assert.match(broken[0] ?? '', /over the limit/);
    assert.equal(got.length, 0);
    assert.equal(channel.open, false);
    assert.equal(channel.send({ type: 'stop' }), false);
    pair.done();
  });

  it('breaks on a payload that is not JSON, and on a frame of another type', async () => {
    for (const bad of [
      frame(F.CONTROL, 0, new TextEncoder().encode('{"type": "hello", not json')),
      frame(F.REQUEST, 0, new TextEncoder().encode('{}')),
    ]) {
      const { pair, got, broken } = await supervisorEnd();
      pair.theirs.write(bad);
      pair.theirs.write(frame(F.CONTROL, 0, new TextEncoder().encode('{"type":"hello"}')));
      await eventually(() => broken.length === 1);
      await new Promise((r) => setTimeout(r, 50));
      // Nothing after the bad frame is read: the channel is gone.
      assert.equal(got.length, 0);
      assert.equal(broken.length, 1);
      pair.done();
    }
  });

  it('a sandbox process cuts long texts before sending them', () => {
    assert.equal(fitControlText('short'), 'short');
    const cut = fitControlText('x'.repeat(MAX_CONTROL_TEXT + 10));
    assert.ok(cut.startsWith('x'.repeat(MAX_CONTROL_TEXT)));
    assert.match(cut, /\(10 more characters\)$/);
  });
});
