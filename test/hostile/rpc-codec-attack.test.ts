/**
 * Red team on the binding-call codec (src/sandbox/rpc-codec.ts) as the supervisor meets it: a fully
 * compromised sandbox process writes whatever bytes it likes on its channel (RPC frames), and the
 * supervisor encodes every tenant's results with one shared scratch buffer (RPC_RESULT frames).
 *
 * Written by a red-team review of ffe1dde: the cases named "WORKED" were attacks that worked then
 * (an out-of-memory crash of the supervisor, bytes aliasing the socket's memory, a scratch buffer
 * that kept its peak size, results over the frame limit); they pass since the fixes. Heavy cases run
 * in a child process with a small heap, scaled down from the real 64 MiB frame / ~4 GiB heap.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { deserialize, serialize, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ARGUMENT_NODES } from '../../src/bindings/call-budget.js';
import { assetBindings } from '../../src/sandbox/assets-binding.js';
import { F, FrameReader, frameHeader, HEADER_BYTES, MAX_FRAME_BYTES } from '../../src/sandbox/channel.js';
import { decodePayload as decodeWith, encodeFrame } from '../../src/sandbox/rpc-codec.js';
import { type ChildResult, heldCallsChild, recordingChannel, runChild } from '../helpers/attacked-channel.js';
import { eventually } from '../helpers/eventually.js';

/** The value of a payload. */
const decodePayload = (payload: Uint8Array, plainBytes = false): unknown =>
  decodeWith(payload, { plainBytes }).value;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).join();

/** Writes compact payloads by hand, including ones no honest writer produces. */
class Hostile {
  private parts: number[] = [1];
  private big: Uint8Array[] = [];
  u8(...b: number[]): this {
    this.parts.push(...b);
    return this;
  }
  u32(n: number): this {
    return this.u8(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24);
  }
  str(s: string): this {
    const b = Buffer.from(s);
    this.u8(6).u32(b.byteLength);
    for (const x of b) this.parts.push(x);
    return this;
  }
  key(s: string): this {
    const b = Buffer.from(s);
    this.u32(b.byteLength);
    for (const x of b) this.parts.push(x);
    return this;
  }
  obj(count: number): this {
    return this.u8(9).u32(count);
  }
  arr(count: number): this {
    return this.u8(8).u32(count);
  }
  /** `count` copies of `unit` (bytes of one encoded value), without a JS array per byte. */
  repeat(unit: number[], count: number): this {
    this.flush();
    const block = new Uint8Array(unit.length * count);
    for (let i = 0; i < count; i++) block.set(unit, i * unit.length);
    this.big.push(block);
    return this;
  }
  private flush(): void {
    this.big.push(Uint8Array.from(this.parts));
    this.parts = [];
  }
  bytes(): Uint8Array {
    this.flush();
    return Buffer.concat(this.big);
  }
}

/** `{ binding, op, args: [arg…] (already encoded), extra… }` as a compact payload. */
function callWith(
  binding: string,
  op: string,
  args: (h: Hostile) => Hostile,
  extra?: (h: Hostile) => Hostile,
) {
  const h = new Hostile()
    .obj(extra ? 4 : 3)
    .key('binding')
    .str(binding)
    .key('op')
    .str(op)
    .key('args');
  args(h);
  if (extra) extra(h.key('pad'));
  return h.bytes();
}

/** A recorded channel (helpers/attacked-channel.ts). */
const channel = recordingChannel;

/**
 * heldCallsChild with calls held 3 s: `payloadJs` sets `n` and `head` (a compact call whose last
 * array holds n values), to which n empty byte arrays (T.BYTES, length 0) are added; the payload
 * goes out `calls` times.
 */
function paddedCallsChild(calls: number, payloadJs: string): ChildResult {
  return heldCallsChild(
    calls,
    3000,
    `${payloadJs}
    const payload = Buffer.concat([Buffer.from(head), Buffer.alloc(n * 5)]);
    for (let i = 0; i < n; i++) payload[head.length + i * 5] = 7;
    for (let id = 1; id <= ${calls}; id++) theirs.write(Buffer.concat([frameHeader(F.RPC, id, payload.byteLength), payload]));`,
    120_000,
  );
}

/** Sends `p` as one binding call and waits until it is answered, reaches the broker, or ends the channel. */
async function sendAndSettle(c: Awaited<ReturnType<typeof channel>>, p: Uint8Array): Promise<void> {
  c.theirs.write(Buffer.concat([frameHeader(F.RPC, 1, p.byteLength), p]));
  await new Promise<void>((r) => {
    c.theirs.once('data', () => r());
    const tick = () => (c.calls.length > 0 || c.broken.length > 0 ? r() : setTimeout(tick, 5));
    tick();
  });
}

/** The child of paddedCallsChild answered every call or ended the channel: it did not run out of memory. */
function assertSurvived(r: ChildResult): void {
  assert.ok(
    /SURVIVED|BROKEN/.test(r.stdout),
    `supervisor died: status ${r.status}, ${r.stderr.split('\n').find((l) => /heap|memory/i.test(l)) ?? r.stderr.slice(-300)}`,
  );
}

describe('rpc-codec red team: the reader (what a hostile sandbox sends)', () => {
  it('HELD: random and mutated payloads only ever throw an Error; nothing hangs or pollutes', () => {
    const seeds = [
      encodeFrame(0, {
        binding: 'KV',
        op: 'put',
        args: ['k', new Uint8Array([1, 2]), { metadata: { a: [1, 2.5, null, true, new Date(0)] } }],
      }),
      encodeFrame(0, {
        binding: 'DB',
        op: 'query',
        args: [{ sql: 'select 1', params: [1, 'x', -0, Number.NaN] }],
      }),
    ];
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const base = seeds[i % seeds.length]!;
      const p =
        i % 5 === 0 ? new Uint8Array(1 + (rand() % 64)).map(() => rand() & 255) : new Uint8Array(base);
      if (i % 5 === 0) p[0] = 1;
      for (let m = 0; m < 1 + (rand() % 4); m++) p[rand() % p.byteLength] = rand() & 255;
      try {
        decodePayload(p);
      } catch (err) {
        assert.ok(err instanceof Error, `payload ${Buffer.from(p).toString('hex')} threw a non-Error`);
      }
    }
    assert.ok(performance.now() - started < 10_000);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), PROTO_KEYS);
  });

  it('HELD: "__proto__", "constructor", "toString", "valueOf" keys become own data properties, never accessors or a prototype', () => {
    const names = [
      '__proto__',
      'constructor',
      'toString',
      'valueOf',
      'hasOwnProperty',
      '__defineGetter__',
      'then',
    ];
    const h = new Hostile().obj(names.length);
    for (const n of names) h.key(n).obj(1).key('polluted').u8(3);
    const out = decodePayload(h.bytes()) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    for (const n of names) {
      const d = Object.getOwnPropertyDescriptor(out, n);
      assert.ok(d && 'value' in d && !d.get && !d.set, n);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // A duplicated "__proto__" key is defined again, not assigned through the accessor.
    const dup = decodePayload(new Hostile().obj(2).key('__proto__').str('a').key('__proto__').obj(0).bytes());
    assert.equal(Object.getPrototypeOf(dup), Object.prototype);
  });

  it('HELD: a call whose binding/op/args sit behind an own "__proto__" key is malformed (ends the channel)', async () => {
    const c = await channel();
    const inner = new Hostile()
      .obj(1)
      .key('__proto__')
      .obj(3)
      .key('binding')
      .str('KV')
      .key('op')
      .str('get')
      .key('args')
      .arr(0);
    const p = inner.bytes();
    c.theirs.write(Buffer.concat([frameHeader(F.RPC, 1, p.byteLength), p]));
    await c.closed;
    assert.equal(c.calls.length, 0);
    assert.equal(c.broken.length, 1);
    c.done();
  });

  it('HELD: invalid UTF-8 and overlong forms decode to U+FFFD, never to "/" or "."', () => {
    const s = decodePayload(new Uint8Array([1, 6, 6, 0, 0, 0, 0xc0, 0xaf, 0xe0, 0x80, 0xae, 0xff])) as string;
    assert.doesNotMatch(s, /[/.]/);
  });

  it('HELD: a structured-clone payload nested 170,000 deep (under the 1 MiB the supervisor takes) is a RangeError the channel catches, not a crash', async () => {
    const depth = 170_000;
    const b = new Uint8Array(3 + depth * 2 + 1 + depth * 3);
    b.set([2, 0xff, 0x0f]);
    let p = 3;
    for (let i = 0; i < depth; i++) {
      b.set([0x41, 1], p);
      p += 2;
    }
    b[p++] = 0x5f;
    for (let i = 0; i < depth; i++) {
      b.set([0x24, 0, 1], p);
      p += 3;
    }
    const c = await channel();
    c.theirs.write(Buffer.concat([frameHeader(F.RPC, 1, b.byteLength), b]));
    await c.closed;
    assert.equal(c.calls.length, 0);
    c.done();
  });

  // WORKED. Each value costs the writer 1-5 bytes but the supervisor 16-190 bytes of heap and its
  // only thread: 64 MiB of T_BYTES(0) = 2.4 GiB heap / 10.8 s; of T_UNDEFINED = 1.1 GiB / 5.8 s
  // (new Array(67M) goes to dictionary elements); an object with 8M 3-byte keys = 7.6 s. Nothing
  // caps the values in a payload (need() bounds them only by its length), and a value outside
  // `args` (an ignored "pad" key) is never seen by checkArgumentSize — yet the call goes on to the
  // provider with it attached.
  it('WORKED then, refused now: a call holding more values than ARGUMENT_NODES (outside args) is refused before it reaches the broker', async () => {
    const c = await channel();
    const n = ARGUMENT_NODES + 100_000;
    const p = callWith(
      'KV',
      'get',
      (h) => h.arr(1).str('k'),
      (h) => h.arr(n).repeat([7, 0, 0, 0, 0], n),
    );
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const t = performance.now();
    await sendAndSettle(c, p);
    const ms = performance.now() - t;
    const heap = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    console.log(`# ${p.byteLength} wire bytes: ${ms.toFixed(0)} ms, heap +${heap.toFixed(0)} MiB`);
    assert.equal(
      c.calls.length,
      0,
      `${n} values reached the broker (pad ${(p.byteLength / 2 ** 20).toFixed(1)} MiB on the wire, +${heap.toFixed(0)} MiB heap)`,
    );
    c.done();
  });

  // WORKED, and worse: the structured-clone fallback is still accepted from the sandbox, and Node's
  // JS-level host-object reader is slow. 64 MiB of empty Uint8Arrays (3 bytes each) = 71 s of a
  // blocked supervisor and 2.9 GiB heap; 64 MiB of {} = 23 s / 2.0 GiB.
  it('WORKED then, refused now: the structured-clone form is bounded the same way', async () => {
    const n = ARGUMENT_NODES + 100_000;
    const body = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) body.set([0x5c, 1, 0], i * 3);
    const head = serialize({ binding: 'KV', op: 'get', args: ['k'], pad: [] });
    // Splice N empty Uint8Array host objects into the "pad" array: 'A' <varint n> … '$' 0 <varint n>.
    const varint = (v: number) => {
      const o: number[] = [];
      while (v >= 128) {
        o.push((v & 127) | 128);
        v = Math.floor(v / 128);
      }
      o.push(v);
      return o;
    };
    const at = head.lastIndexOf(0x41); // the empty array 'A' 0 … '$' 0 0
    const p = Buffer.concat([
      Buffer.from([2]),
      head.subarray(0, at),
      Buffer.from([0x41, ...varint(n)]),
      body,
      Buffer.from([0x24, 0, ...varint(n)]),
      head.subarray(at + 5),
    ]);
    assert.equal(
      (deserialize(p.subarray(1)) as { pad: unknown[] }).pad.length,
      n,
      'the payload is well-formed',
    );
    const c = await channel();
    const t = performance.now();
    await sendAndSettle(c, p);
    console.log(`# clone form, ${p.byteLength} wire bytes: ${(performance.now() - t).toFixed(0)} ms blocked`);
    assert.equal(c.calls.length, 0, `${n} values reached the broker through the structured-clone form`);
    c.done();
  });

  // WORKED: crash the supervisor (every tenant down). A decoded call stays reachable while its
  // provider runs (broker.call's `req`, the metrics/tracing closures), e.g. a DB query behind
  // `SELECT pg_sleep(25)` (statement timeout is 30 s). Scaled: 512 MiB heap and 6 MiB frames here
  // is 4 GiB and ~48 MiB frames in production; two 64 MiB frames of empty bytes suffice there.
  it('WORKED then, refused now: two padded calls held in flight take the supervisor down (out of memory)', () => {
    const n = Math.floor((6 * 2 ** 20) / 5);
    const r = paddedCallsChild(
      3,
      `const n = ${n};
      const head = [1, 9, 4,0,0,0, 7,0,0,0, ...Buffer.from('binding'), 6, 2,0,0,0, ...Buffer.from('DB'),
        2,0,0,0, ...Buffer.from('op'), 6, 5,0,0,0, ...Buffer.from('query'),
        4,0,0,0, ...Buffer.from('args'), 8, 1,0,0,0, 9, 1,0,0,0,
        3,0,0,0, ...Buffer.from('sql'), 6, 19,0,0,0, ...Buffer.from('select pg_sleep(25)'),
        3,0,0,0, ...Buffer.from('pad'), 8, n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24];`,
    );
    assertSurvived(r);
  });

  // WORKED even with a per-payload cap at ARGUMENT_NODES: each call's args are within budget, but
  // MAX_RPC_IN_FLIGHT counts calls, not what they hold; 1024 × ~170 MiB per instance.
  it('WORKED then, refused now: calls within ARGUMENT_NODES each, held in flight, take the supervisor down', () => {
    // Each a query { sql: 'x', params: [[900,000 empty byte arrays]] }.
    const r = paddedCallsChild(
      5,
      `const n = 900_000;
      const head = [1, 9, 3,0,0,0, 7,0,0,0, ...Buffer.from('binding'), 6, 2,0,0,0, ...Buffer.from('DB'),
        2,0,0,0, ...Buffer.from('op'), 6, 5,0,0,0, ...Buffer.from('query'),
        4,0,0,0, ...Buffer.from('args'), 8, 1,0,0,0, 9, 2,0,0,0,
        3,0,0,0, ...Buffer.from('sql'), 6, 1,0,0,0, 120,
        6,0,0,0, ...Buffer.from('params'), 8, 1,0,0,0, 8, n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24];`,
    );
    assertSurvived(r);
  });

  it('calls each within the budget, but more than a channel may hold in flight, are refused (ERR_OVERLOADED)', async () => {
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const c = await channel(async () => {
      await held;
      return 'ok';
    });
    const answers: { id: number; result: { ok: boolean; error?: { code: string } } }[] = [];
    const reader = new FrameReader((_type, id, payload) =>
      answers.push({ id, result: decodePayload(payload) as { ok: boolean; error?: { code: string } } }),
    );
    c.theirs.on('data', (chunk: Buffer) => reader.push(chunk));
    // 200,000 byte values each: 800,000 of the 1,000,000 one call may make; two fill a channel's 2,000,000.
    const n = 200_000;
    const p = callWith('DB', 'query', (h) => h.arr(1).arr(n).repeat([7, 0, 0, 0, 0], n));
    for (let id = 1; id <= 3; id++) c.theirs.write(Buffer.concat([frameHeader(F.RPC, id, p.byteLength), p]));
    await eventually(() => answers.length === 1);
    assert.equal(answers[0]?.id, 3);
    assert.equal(answers[0]?.result.error?.code, 'ERR_OVERLOADED');
    assert.equal(c.calls.length, 2);
    release();
    await eventually(() => answers.length === 3);
    assert.deepEqual(
      answers.slice(1).map((a) => a.result.ok),
      [true, true],
    );
    assert.equal(c.broken.length, 0);
    c.done();
  });

  // WORKED: T_BYTES is `this.bytes.slice(…)`, and the payload is a Buffer (a subarray of the socket
  // chunk) whenever the frame arrived in one read: Buffer#slice is a view. So "bytes" are a Node
  // Buffer sharing the read chunk (other frames included), not the plain Uint8Array copy the file
  // comment and test/rpc-codec.test.ts promise — whether you get one depends on how reads split.
  for (const plainBytes of [false, true]) {
    it(`WORKED then, refused now: bytes read from a Buffer payload are a plain copy (plainBytes ${plainBytes})`, () => {
      const p = encodeFrame(0, { ok: true, value: new Uint8Array([1, 2, 3]) });
      const chunk = Buffer.from(
        Uint8Array.from([...Buffer.from('OTHER-FRAME-'), ...p, ...Buffer.from('-NEXT-FRAME')]).buffer,
      );
      const out = (decodePayload(chunk.subarray(12, 12 + p.byteLength), plainBytes) as { value: Uint8Array })
        .value;
      chunk.fill(0);
      assert.deepEqual([...out], [1, 2, 3], 'a view of the socket chunk');
      assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype, 'a Node Buffer');
      assert.equal(out.buffer.byteLength, 3, 'holds the whole read chunk');
    });
  }

  // WORKED (honest guest, wrong data): env.__STATIC_CONTENT.get(key, 'arrayBuffer') returns
  // `bytes.slice().buffer`, which for a Buffer is the whole read chunk: frame header, the
  // { ok, value } encoding, and any frame read with it.
  it('WORKED then, refused now: __STATIC_CONTENT.get(k, "arrayBuffer") gives the file, not the socket chunk', async () => {
    const file = new Uint8Array([104, 105]); // "hi"
    const wire = encodeFrame(HEADER_BYTES, { ok: true, value: file });
    // As a socket read delivers it: a Buffer over its own ArrayBuffer, this frame and the next.
    const chunk = Buffer.from(Uint8Array.from([...wire, ...Buffer.from('and the next frame')]).buffer);
    const rpc = async () =>
      (decodePayload(chunk.subarray(HEADER_BYTES, wire.byteLength), true) as { value: unknown }).value;
    const env = assetBindings(rpc, undefined) as {
      __STATIC_CONTENT: { get(k: string, t: string): Promise<ArrayBuffer> };
    };
    const ab = await env.__STATIC_CONTENT.get('index.html', 'arrayBuffer');
    assert.equal(
      ab.byteLength,
      2,
      `got ${ab.byteLength} bytes: ${JSON.stringify(Buffer.from(ab).toString('latin1'))}`,
    );
  });
});

describe('rpc-codec red team: the writer (one scratch buffer for every tenant’s results)', () => {
  it('HELD: a getter that encodes another tenant’s result mid-write, or throws, mixes nothing', () => {
    let other: Uint8Array | undefined;
    const a = {
      ok: true,
      value: {
        first: 'A'.repeat(5000),
        get g() {
          other = encodeFrame(HEADER_BYTES, { ok: true, value: { tenant: 'B', blob: 'B'.repeat(20_000) } });
          return 'A2';
        },
        last: 'A'.repeat(9000),
      },
    };
    const outA = encodeFrame(HEADER_BYTES, a);
    assert.deepEqual(decodePayload(outA.subarray(HEADER_BYTES)), {
      ok: true,
      value: { first: 'A'.repeat(5000), g: 'A2', last: 'A'.repeat(9000) },
    });
    assert.deepEqual(decodePayload((other as Uint8Array).subarray(HEADER_BYTES)), {
      ok: true,
      value: { tenant: 'B', blob: 'B'.repeat(20_000) },
    });
    // A throw midway leaves nothing behind for the next frame.
    assert.throws(() =>
      encodeFrame(HEADER_BYTES, {
        secret: 'S'.repeat(50_000),
        get boom() {
          throw new Error('x');
        },
      }),
    );
    const next = encodeFrame(HEADER_BYTES, { ok: true, value: 'n' });
    assert.ok(!Buffer.from(next).includes('SSSS'));
    assert.deepEqual(decodePayload(next.subarray(HEADER_BYTES)), { ok: true, value: 'n' });
  });

  // WORKED (memory): reserve() grows the module-level scratch to the largest result ever written,
  // and to 3 × string.length for ASCII, and never gives it back. One SQL row `repeat('x', 2e8)`
  // leaves the supervisor holding a 1 GiB (2^30) ArrayBuffer for the rest of its life (and a
  // 5.4e8-char string would ask for 2 GiB). The frame it builds is over MAX_FRAME_BYTES anyway.
  it('WORKED then, refused now: a large result does not leave the scratch buffer grown', () => {
    const r = runChild(
      `
      import { runInNewContext } from 'node:vm';
      import { setFlagsFromString } from 'node:v8';
      import { encodeFrame } from 'SRC/sandbox/rpc-codec.ts';
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc');
      gc();
      const before = process.memoryUsage().arrayBuffers;
      let s = 'x'.repeat(20_000_000);
      encodeFrame(9, { ok: true, value: { rows: [{ big: s }] } });
      s = '';
      encodeFrame(9, { ok: true, value: 'small' });
      gc(); gc();
      console.log(JSON.stringify({ retainedMiB: (process.memoryUsage().arrayBuffers - before) / 2 ** 20 }));
      `,
      [],
      120_000,
    );
    const { retainedMiB } = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      retainedMiB: number;
    };
    assert.ok(
      retainedMiB < 8,
      `the scratch buffer still holds ${retainedMiB.toFixed(0)} MiB after a 20 MB result`,
    );
  });

  // WORKED (minor, pre-existing with v8.serialize): reply() sends a result over MAX_FRAME_BYTES,
  // which the instance's FrameReader refuses by throwing from its 'data' handler.
  it('WORKED then, refused now: a result over MAX_FRAME_BYTES becomes an error result, not an oversized frame', async () => {
    const c = await channel(async () => 'x'.repeat(MAX_FRAME_BYTES + 1024));
    const first = new Promise<Buffer>((r) => c.theirs.once('data', r));
    const p = encodeFrame(0, { binding: 'DB', op: 'query', args: [{ sql: 'select repeat(...)' }] });
    c.theirs.write(Buffer.concat([frameHeader(F.RPC, 3, p.byteLength), p]));
    const head = await first;
    assert.equal(head[4], F.RPC_RESULT);
    const length = head.readUInt32BE(0);
    assert.ok(
      length <= MAX_FRAME_BYTES,
      `an RPC_RESULT of ${length} bytes (the limit is ${MAX_FRAME_BYTES})`,
    );
    c.done();
  });
});

describe('rpc-codec red team: an honest guest’s values', () => {
  const same = (v: unknown) => {
    const out = decodePayload(encodeFrame(0, v));
    assert.deepEqual(out, deserialize(serialize(v)));
    return out;
  };

  it('HELD: edge values round-trip as a structured clone would give them', () => {
    const values: unknown[] = [
      -0,
      Number.NaN,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53 + 2,
      Number.MIN_VALUE,
      -Number.MAX_VALUE,
      new Date(8.64e15),
      new Date(-8.64e15),
      Object.assign(Object.create(null), { __proto__: 1, a: { b: [] } }),
      { length: 3, 0: 'a' },
      { 1: 'a', 0: 'b', x: 'c', '-1': 'd', 4294967295: 'e' },
      new Uint8Array(new ArrayBuffer(8), 2, 3),
      new Float64Array([1, -0]),
      new (class extends Uint8Array {})(2),
      'a\u0000b\uffff\u{10ffff}',
      Object.defineProperty({ visible: 1 }, 'hidden', { value: 2, enumerable: false }),
      { [Symbol('s')]: 1, k: 2 },
    ];
    for (const v of values) same(v);
    assert.ok(Object.is(same(-0), -0));
    assert.ok(Number.isNaN((decodePayload(encodeFrame(0, new Date(Number.NaN))) as Date).getTime()));
    const b = decodePayload(encodeFrame(0, Buffer.from('buf'))) as Uint8Array;
    assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype); // a Buffer arrives as plain bytes (by design)
  });

  it('an object whose prototype is Date.prototype but is no Date sends as {}, as a clone does', () => {
    same(Object.create(Date.prototype));
  });
});
