/**
 * FrameWriter (sandbox/channel.ts) attacked from the sandbox's side of an instance's channel: the
 * first frame of a turn now goes to socket.write at once and only the frames after it are corked
 * until the check phase. A compromised sandbox process writes raw frames on its end and reads (or
 * does not read) what the supervisor writes, and tries to reorder or tear frames, leave the
 * supervisor's socket corked, slow another tenant's channel, break credit accounting, or make the
 * supervisor pay a write per frame. Also: the socket a pre-started worker warms (instance.ts
 * prewarm) must leave nothing a function can reach.
 *
 * "HELD: …" cases hold today and guard against regressions.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { StreamSink } from '../../src/runtime/instance-channel.js';
import {
  type CorkableSink,
  F,
  FrameReader,
  FrameWriter,
  frame,
  HEADER_BYTES,
  headFrame,
  STREAM_WINDOW,
} from '../../src/sandbox/channel.js';
import type { BindingCall } from '../../src/sandbox/protocol.js';
import { decodePayload, encodeFrame } from '../../src/sandbox/rpc-codec.js';
import { recordingChannel } from '../helpers/attacked-channel.js';
import { type Arena, arena } from './harness.js';

/** A stream sink that records what it is told. */
function recordingSink() {
  const seen = { bodyBytes: 0, closed: 0, ended: 0, credit: 0 };
  const sink: StreamSink = {
    response: () => undefined,
    body: (chunk) => {
      seen.bodyBytes += chunk.byteLength;
    },
    end: () => {
      seen.ended++;
    },
    threw: () => undefined,
    reset: () => undefined,
    credit: (n) => {
      seen.credit += n;
    },
    closed: () => {
      seen.closed++;
    },
  };
  return { sink, seen };
}

/**
 * A recorded channel (helpers/attacked-channel.ts) as `channel`; `rpc` answers binding calls,
 * `broken` records why it ended, and `closed` is the supervisor's end closing.
 */
async function boundChannel(rpc: (call: BindingCall) => unknown = async () => 'ok') {
  const c = await recordingChannel(async (call) => rpc(call));
  const closed = new Promise<void>((r) => c.ours.once('close', () => r()));
  return { ...c, channel: c.ch, closed };
}

/** Reads frames on the sandbox's end. */
function readFrames(socket: Socket) {
  const frames: { type: number; stream: number; payload: Uint8Array }[] = [];
  const reader = new FrameReader((type, stream, payload) =>
    frames.push({ type, stream, payload: new Uint8Array(payload) }),
  );
  socket.on('data', (chunk: Uint8Array) => reader.push(chunk));
  return frames;
}

/** Resolves when `test` holds, polling; fails after `ms`. */
async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The writes that reach the socket's handle (one syscall, or one queued write, each). */
function countHandleWrites(socket: Socket): { writes: number } {
  const counter = { writes: 0 };
  const s = socket as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...a) => {
    counter.writes++;
    return write(...a);
  };
  s._writev = (...a) => {
    counter.writes++;
    return writev(...a);
  };
  return counter;
}

/** A frame whose payload is a sequence number and `pad` bytes of filler. */
function numbered(n: number, pad: number): Uint8Array {
  const payload = new Uint8Array(4 + pad);
  new DataView(payload.buffer).setUint32(0, n);
  payload.fill(n & 0xff, 4);
  return payload;
}

const rpcFrame = (id: number) =>
  frame(F.RPC, id, encodeFrame(0, { binding: 'KV', op: 'get', args: [`key-${id}`] }));

describe('hostile: FrameWriter on the supervisor’s end of a channel', () => {
  it('HELD: frames written in every writer state (lone, corked, from microtasks, immediates and timers, partial writes) arrive whole and in order', async () => {
    const c = await boundChannel();
    const got = readFrames(c.theirs);
    let n = 0;
    let seed = 7;
    const rand = (k: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    // Mostly small frames, now and then one of 1 MiB: the socket takes it in part and queues the rest.
    const send = () => {
      const big = rand(200) === 0;
      c.channel.send(F.ABORT, n % 1000, numbered(n++, big ? 2 ** 20 : rand(3000)));
    };
    for (let turn = 0; turn < 300; turn++) {
      const pattern = rand(6);
      if (pattern === 0) send();
      else if (pattern === 1) for (let i = rand(20); i >= 0; i--) send();
      else if (pattern === 2) {
        send();
        queueMicrotask(send);
        process.nextTick(send);
      } else if (pattern === 3) {
        // An immediate queued before the writer's own (it runs before the writer uncorks), one after.
        setImmediate(send);
        send();
        send();
        setImmediate(send);
      } else if (pattern === 4) setTimeout(send, 0);
      else {
        send();
        setImmediate(() => setImmediate(send));
      }
      await nextTurn();
    }
    // The last turn's timers and nested immediates send too: let them, then count.
    await sleep(20);
    await nextTurn();
    await nextTurn();
    const total = n;
    await until(() => got.length >= total, 15_000, `${total} frames`);
    for (let i = 0; i < total; i++) {
      const f = got[i]!;
      assert.equal(f.type, F.ABORT);
      const seq = new DataView(f.payload.buffer).getUint32(0);
      assert.equal(seq, i, `frame ${i} arrived as ${seq}`);
      assert.equal(f.stream, i % 1000);
      assert.ok(
        f.payload.subarray(4).every((b) => b === (i & 0xff)),
        `frame ${i} torn`,
      );
    }
    assert.equal(c.ours.writableCorked, 0, 'left corked');
    assert.deepEqual(c.broken, []);
    c.done();
  });

  it('HELD: the supervisor’s socket is never left corked, even while its peer reads nothing', async () => {
    const c = await boundChannel();
    c.theirs.pause();
    const big = new Uint8Array(2 ** 20);
    for (const count of [1, 2, 3, 100]) {
      for (let i = 0; i < count; i++) c.channel.send(F.ABORT, 1, big);
      await nextTurn();
      assert.equal(c.ours.writableCorked, 0, `after ${count} frames in a turn`);
    }
    assert.ok(c.ours.writableLength > 0, 'the peer reads nothing, so writes queue');
    // Turns that write nothing leave it alone too.
    await nextTurn();
    assert.equal(c.ours.writableCorked, 0);
    c.done();
  });

  it('HELD: a sandbox that hangs up (half-close, then gone) while the supervisor has frames corked breaks nothing', async () => {
    const c = await boundChannel();
    const { sink, seen } = recordingSink();
    c.channel.open(sink);
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      c.theirs.end();
      // Frames in flight across the hang-up: a lone one, then a corked batch, turn after turn.
      for (let turn = 0; turn < 20 && !c.channel.closed; turn++) {
        for (let i = 0; i < 5; i++) c.channel.send(F.ABORT, i, new Uint8Array(100));
        await nextTurn();
      }
      c.theirs.destroy();
      await c.closed;
      await nextTurn();
      assert.equal(seen.closed, 1, 'the open stream heard that the channel closed');
      assert.ok(c.channel.closed);
      c.channel.send(F.ABORT, 1);
      await nextTurn();
      assert.equal(c.ours.writableCorked, 0);
      assert.deepEqual(errors, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      c.done();
    }
  });

  it('HELD: a channel whose sandbox never reads does not delay another channel’s frames', async () => {
    const flooded = await boundChannel();
    const other = await boundChannel();
    flooded.theirs.pause();
    const got = readFrames(other.theirs);
    const mib = new Uint8Array(2 ** 20);
    for (let i = 0; i < 32; i++) flooded.channel.send(F.ABORT, 1, mib);
    await nextTurn();
    assert.ok(flooded.ours.writableLength > 16 * 2 ** 20, 'the flooded channel has a backlog');
    // A lone frame on the other channel goes to the kernel at once, not after the flood.
    other.channel.send(F.ABORT, 2, numbered(0, 10));
    assert.equal(other.ours.writableLength, 0, 'the lone frame waited');
    for (let i = 1; i <= 50; i++) other.channel.send(F.ABORT, 2, numbered(i, 10));
    await nextTurn();
    assert.equal(other.ours.writableCorked, 0);
    assert.equal(flooded.ours.writableCorked, 0);
    await until(() => got.length === 51, 2000, 'the other channel’s frames');
    assert.deepEqual(
      got.map((f) => new DataView(f.payload.buffer).getUint32(0)),
      Array.from({ length: 51 }, (_, i) => i),
    );
    flooded.done();
    other.done();
  });

  it('HELD: a flood of binding calls costs the supervisor at most two socket writes per read, answered in order', async () => {
    const c = await boundChannel(() => 'v');
    const writes = countHandleWrites(c.ours);
    let reads = 0;
    c.ours.on('data', () => reads++);
    const got = readFrames(c.theirs);
    const CALLS = 20_000;
    // In bursts of every size, some split mid-frame, so reads land in many different turns.
    let id = 1;
    while (id <= CALLS) {
      const burst = Math.min(1 + (id % 97), CALLS - id + 1);
      const bytes = Buffer.concat(Array.from({ length: burst }, (_, i) => rpcFrame(id + i)));
      id += burst;
      const cut = bytes.byteLength >> 1;
      c.theirs.write(bytes.subarray(0, cut));
      c.theirs.write(bytes.subarray(cut));
      if (id % 5 === 0) await nextTurn();
    }
    await until(() => got.length === CALLS, 15_000, 'every result');
    got.forEach((f, i) => {
      assert.equal(f.type, F.RPC_RESULT);
      assert.equal(f.stream, i + 1, 'results out of order');
    });
    assert.deepEqual(decodePayload(got[0]!.payload).value, { ok: true, value: 'v' });
    assert.ok(
      writes.writes <= 2 * reads + 2,
      `${writes.writes} socket writes for ${reads} reads (${CALLS} calls)`,
    );
    assert.deepEqual(c.broken, []);
    c.done();
  });

  it('HELD: CREDIT frames leave after the allowance they grant is counted; one byte past it still ends the channel', async () => {
    const c = await boundChannel();
    const { sink, seen } = recordingSink();
    const id = c.channel.open(sink);
    const got = readFrames(c.theirs);
    c.theirs.write(headFrame(F.RESPONSE_HEAD, id, { s: 200, h: [] }));
    const chunk = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < STREAM_WINDOW; sent += chunk.byteLength)
      c.theirs.write(frame(F.BODY, id, chunk));
    await until(() => seen.bodyBytes === STREAM_WINDOW, 5000, 'the window');
    // The sandbox spends each grant the moment its CREDIT frame arrives, in the same turn.
    let spent = 0;
    c.theirs.on('data', () => {
      const credits = got.filter((f) => f.type === F.CREDIT);
      const granted = credits.reduce((a, f) => a + new DataView(f.payload.buffer).getUint32(0), 0);
      if (granted > spent) {
        c.theirs.write(frame(F.BODY, id, new Uint8Array(granted - spent)));
        spent = granted;
      }
    });
    for (let i = 0; i < 50; i++) {
      c.channel.grant(id, 1000);
      c.channel.grant(id, 24);
      await nextTurn();
    }
    await until(() => seen.bodyBytes === STREAM_WINDOW + 50 * 1024, 5000, 'the granted bytes');
    assert.deepEqual(c.broken, []);
    c.theirs.write(frame(F.BODY, id, new Uint8Array(1)));
    await c.closed;
    assert.match(c.broken[0] ?? '', /past the credit/);
    c.done();
  });

  // Found by this suite: write() ignored socket.write()'s false and the channel never stopped
  // reading, so a few KB of calls for a large value queued GBs in the supervisor. Now reading pauses
  // past 256 KiB queued, and a result past 16 MiB queued is refused (ERR_OVERLOADED).
  it('HELD: a sandbox that never reads its channel cannot make the supervisor queue binding results without bound', async () => {
    const value = new Uint8Array(512 * 1024);
    const c = await boundChannel(() => value);
    c.theirs.pause();
    // 128 calls of ~40 bytes each: 5 KB from the sandbox.
    for (let id = 1; id <= 128; id++) c.theirs.write(rpcFrame(id));
    await sleep(500);
    const queued = c.ours.writableLength;
    c.done();
    // 16 MiB queued, and the one result written before the bound was passed.
    assert.ok(
      c.broken.length > 0 || queued <= 16 * 2 ** 20 + value.byteLength + 64,
      `${(queued / 2 ** 20).toFixed(0)} MiB queued for a sandbox that reads nothing`,
    );
  });

  // Found by this suite: grant() queued a 13-byte CREDIT write per body chunk whether or not the
  // sandbox read them. Reading now pauses once 256 KiB are queued, so the chunks stop coming.
  it('HELD: a sandbox that never reads its channel cannot make the supervisor queue a CREDIT frame per tiny body chunk without bound', async () => {
    const c = await boundChannel();
    c.theirs.pause();
    let id = 0;
    const sink: StreamSink = {
      ...recordingSink().sink,
      // As the gateway does (proxy.ts): a chunk the client took is granted back at once.
      body: (chunk) => c.channel.grant(id, chunk.byteLength),
    };
    id = c.channel.open(sink);
    const chunks = [headFrame(F.RESPONSE_HEAD, id, { s: 200, h: [] })];
    for (let i = 0; i < 200_000; i++) chunks.push(frame(F.BODY, id, new Uint8Array(1)));
    c.theirs.write(Buffer.concat(chunks));
    await sleep(1000);
    const queued = c.ours.writableLength;
    c.done();
    assert.ok(
      c.broken.length > 0 || queued < 2 ** 20,
      `${queued} bytes in ${(queued / (HEADER_BYTES + 4)).toFixed(0)} queued CREDIT writes`,
    );
  });
});

describe('hostile: FrameWriter itself, against the old cork-every-turn writer', () => {
  /** A sink that counts what would reach the kernel: writes while uncorked, and flushes on uncork. */
  function countingSink() {
    const out = { flushes: 0, order: [] as number[] };
    let corked = 0;
    let held: number[] = [];
    const sink: CorkableSink = {
      write(bytes) {
        const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
        if (corked > 0) held.push(n);
        else {
          out.flushes++;
          out.order.push(n);
        }
      },
      cork() {
        corked++;
      },
      uncork() {
        corked--;
        if (corked === 0 && held.length > 0) {
          out.flushes++;
          out.order.push(...held);
          held = [];
        }
      },
    };
    return { sink, out, corked: () => corked };
  }

  /** The writer before this change: every frame corked until the check phase. */
  class OldWriter {
    private corked = false;
    constructor(private readonly sink: CorkableSink) {}
    write(bytes: Uint8Array): void {
      if (!this.corked) {
        this.corked = true;
        this.sink.cork();
        setImmediate(() => {
          this.corked = false;
          this.sink.uncork();
        });
      }
      this.sink.write(bytes);
    }
  }

  it('HELD: whatever the schedule, it keeps order, uncorks every turn, and writes at most twice as often as the old writer', async () => {
    const now = countingSink();
    const old = countingSink();
    const writer = new FrameWriter(now.sink);
    const oldWriter = new OldWriter(old.sink);
    let n = 0;
    const send = () => {
      const b = numbered(n++, 0);
      writer.write(b);
      oldWriter.write(b);
    };
    let seed = 11;
    const rand = (k: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    for (let turn = 0; turn < 3000; turn++) {
      const k = rand(8);
      for (let i = 0; i < k; i++) {
        const where = rand(4);
        if (where === 0) send();
        else if (where === 1) queueMicrotask(send);
        else if (where === 2) setImmediate(send);
        else process.nextTick(send);
      }
      await nextTurn();
    }
    await nextTurn();
    await nextTurn();
    assert.equal(now.corked(), 0);
    assert.equal(old.corked(), 0);
    const all = Array.from({ length: n }, (_, i) => i);
    assert.deepEqual(now.out.order, all);
    assert.deepEqual(old.out.order, all);
    assert.ok(
      now.out.flushes <= 2 * old.out.flushes,
      `${now.out.flushes} flushes against ${old.out.flushes} before`,
    );
  });
});

describe('hostile: the socket a pre-started worker warms (bubblewrap off)', () => {
  let a: Arena;
  before(async () => {
    a = await arena({ isolation: { bubblewrap: 'off' } });
  });
  after(() => a.close());

  it('HELD: a function on a warmed worker reaches no socket, handle or host timer', async () => {
    // The first deploy in the namespace starts a process and, after it, a spare pre-started one
    // (its worker warmed: the socket made and destroyed); the next deploy gets the spare.
    await a.deploy({ 'fw-first': { code: "export default { fetch() { return new Response('x'); } };" } });
    await sleep(1500);
    await a.deploy({
      'fw-probe': {
        code: `
export default {
  async fetch() {
    const found = [];
    const seen = new Set();
    const walk = (v, path, depth) => {
      if (depth > 5 || v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return;
      seen.add(v);
      let name = '';
      try { name = Object.prototype.toString.call(v) + ' ' + String(v.constructor && v.constructor.name); } catch {}
      if (/Socket|Pipe|TCP|StreamWrap|FileHandle|Timeout|Immediate/.test(name)) found.push(path + ': ' + name);
      let keys = [];
      try { keys = Reflect.ownKeys(v); } catch { return; }
      for (const k of keys) {
        let d;
        try { d = Object.getOwnPropertyDescriptor(v, k); } catch { continue; }
        if (d && 'value' in d) walk(d.value, path + '.' + String(k), depth + 1);
      }
      try { walk(Object.getPrototypeOf(v), path + '.__proto__', depth + 1); } catch {}
    };
    walk(globalThis, 'globalThis', 0);
    // Read off globalThis: a bare \`require\` is esbuild's shim (it throws on a call), not Node's.
    const g = globalThis;
    return Response.json({ found, process: typeof g.process, setImmediate: typeof g.setImmediate, require: typeof g.require });
  },
};`,
      },
    });
    const seen = await a.json<{ found: string[]; process: string; setImmediate: string; require: string }>(
      '/fw-probe',
    );
    assert.deepEqual(seen.found, []);
    assert.equal(seen.process, 'undefined');
    assert.equal(seen.setImmediate, 'undefined');
    assert.equal(seen.require, 'undefined');
    await a.neighbourOk();
  });
});
