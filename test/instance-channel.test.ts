/**
 * Stream ids on an instance's channel are reused (slot-table.ts): a frame that arrives late for a
 * stream the gateway already ended must never reach the request that now holds its slot, and the
 * instance sends nothing more for a stream the gateway aborted.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { InstanceChannel, type StreamSink } from '../src/runtime/instance-channel.js';
import { F, FrameReader, frame, headFrame } from '../src/sandbox/channel.js';

/**
 * The instance's end (src/sandbox/serve.ts), loaded by a path the type checker does not follow:
 * sandbox code is checked against its own lib settings (src/sandbox/tsconfig.json), not this one's.
 */
const SERVE = '../src/sandbox/serve.js';
type Handler = Record<string, (...args: unknown[]) => unknown>;
interface ServerLike {
  onFrame(type: number, stream: number, payload: Uint8Array): void;
}
const { InstanceServer } = (await import(SERVE)) as {
  InstanceServer: new (
    handler: Handler,
    env: Record<string, unknown>,
    hooks: {
      write(b: Uint8Array): void;
      run<T>(id: string, fn: () => T): T;
      logError(...a: unknown[]): void;
      begin(): number;
      end(slot: number): void;
    },
  ) => ServerLike;
};

/** A socket stand-in: what the channel writes is collected, `emit('data')` feeds it frames. */
function fakeSocket(): Socket & { written: Uint8Array[] } {
  const s = new EventEmitter() as unknown as Socket & { written: Uint8Array[] };
  s.written = [];
  Object.assign(s, {
    cork() {},
    uncork() {},
    write: (b: Uint8Array) => s.written.push(b) > 0,
    destroy() {},
  });
  return s;
}

/** A sink that records every frame it is handed. */
function recordingSink(log: string[], name: string): StreamSink {
  return {
    response: () => void log.push(`${name} response`),
    body: () => void log.push(`${name} body`),
    end: () => void log.push(`${name} end`),
    threw: () => void log.push(`${name} threw`),
    reset: () => void log.push(`${name} reset`),
    credit: () => void log.push(`${name} credit`),
    closed: () => void log.push(`${name} closed`),
  };
}

describe('instance channel: reused stream ids', () => {
  it('drops frames for an aborted stream, however many streams reuse slots after it', () => {
    const socket = fakeSocket();
    const channel = new InstanceChannel(socket, { rpc: async () => 0, log: () => {} }, (why) => {
      throw new Error(`broken: ${why}`);
    });
    const log: string[] = [];
    const late = channel.open(recordingSink(log, 'aborted'));
    channel.abort(late);
    let current = 0;
    for (let i = 0; i < 100_000; i++) {
      current = channel.open(recordingSink(log, `request ${i}`));
      assert.notEqual(current, late);
      if (i < 99_999) channel.done(current);
    }
    socket.emit('data', headFrame(F.RESPONSE, late, { s: 200, h: [] }, new TextEncoder().encode('late')));
    socket.emit('data', frame(F.END, late));
    socket.emit('data', frame(F.THREW, late));
    assert.deepEqual(log, [], 'no stream got the late frames');
    socket.emit('data', headFrame(F.RESPONSE, current, { s: 200, h: [] }, new Uint8Array()));
    assert.deepEqual(log, ['request 99999 response']);
  });
});

describe('instance server: nothing after an abort', () => {
  /** A server over a handler; returns it and the frame types it wrote, by stream. */
  function server(handler: Handler) {
    const frames: [type: number, stream: number][] = [];
    const reader = new FrameReader((type, stream) => void frames.push([type, stream]));
    const s = new InstanceServer(
      handler,
      {},
      {
        write: (b) => reader.push(b),
        run: (_id, fn) => fn(),
        logError: () => {},
        begin: () => 0,
        end: () => {},
      },
    );
    return { s, frames };
  }

  it('an event the gateway aborted (its time limit) is never answered, even when its handler finishes later', async () => {
    let finish: () => void = () => {};
    const done = new Promise<void>((r) => (finish = r));
    const { s, frames } = server({
      async scheduled() {
        await done;
      },
    });
    s.onFrame(
      F.EVENT,
      7,
      headFrame(F.EVENT, 7, {
        kind: 'scheduled',
        id: 'e',
        payload: { cron: '* * * * *', scheduledTime: 0 },
      }).subarray(9),
    );
    s.onFrame(F.ABORT, 7, new Uint8Array());
    finish();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(frames, []);
  });

  it('a streamed response the gateway aborted sends no END after it', async () => {
    let pull: () => void = () => {};
    const gate = new Promise<void>((r) => (pull = r));
    const { s, frames } = server({
      fetch: () =>
        new Response(
          new ReadableStream({
            async start(c) {
              await gate;
              c.close();
            },
          }),
        ),
    });
    s.onFrame(
      F.REQUEST,
      9,
      headFrame(F.REQUEST, 9, { m: 'GET', u: '/', h: ['host', 'x'], host: 'x', id: 'r' }).subarray(9),
    );
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(frames, [[F.RESPONSE_HEAD, 9]]);
    s.onFrame(F.ABORT, 9, new Uint8Array());
    pull();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(frames, [[F.RESPONSE_HEAD, 9]], 'no END, no RESET');
  });
});
