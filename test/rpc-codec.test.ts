/**
 * The payload of binding calls and results (src/sandbox/rpc-codec.ts): what goes in comes out as
 * structured clone would give it, in the compact form where it can and as a clone where it cannot;
 * and a reader given hostile bytes throws rather than allocating, recursing or polluting.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { decodePayload as decodeWith, encodeFrame, PayloadTooLarge } from '../src/sandbox/rpc-codec.js';

/** The value of a payload (the count of what it made aside). */
const decodePayload = (payload: Uint8Array, plainBytes = false, maxValues?: number): unknown =>
  decodeWith(payload, { plainBytes, ...(maxValues !== undefined ? { maxValues } : {}) }).value;

const COMPACT = 1;
/** [1, <hole>, 3], written without a literal hole. */
const holey = (): unknown[] => {
  const a: unknown[] = [1];
  a[2] = 3;
  return a;
};
const CLONE = 2;

function roundTrip(value: unknown, plainBytes = false): { form: number; out: unknown } {
  const bytes = encodeFrame(0, value);
  return { form: bytes[0]!, out: decodePayload(bytes, plainBytes) };
}

describe('rpc-codec', () => {
  it('sends everyday values in the compact form, equal to a structured clone of them', () => {
    const date = new Date('2026-12-02T14:00:00Z');
    const values: unknown[] = [
      undefined,
      null,
      true,
      false,
      0,
      -0,
      42,
      -7,
      2 ** 31,
      -(2 ** 31),
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.MAX_SAFE_INTEGER,
      '',
      'héllo wörld 👋',
      'x'.repeat(100_000),
      new Uint8Array([1, 2, 3]),
      date,
      [1, 'two', [3, [4]], { five: 5 }],
      { binding: 'KV', op: 'get', args: ['k1', { type: 'json' }], nothing: undefined },
      { ok: true, value: { value: new Uint8Array(29), metadata: null } },
      { rows: [{ id: 1, name: 'a', at: date, blob: new Uint8Array([9]) }], rowCount: 1 },
      Object.assign(Object.create(null), { a: 1 }),
    ];
    for (const [i, value] of values.entries()) {
      const { form, out } = roundTrip(value);
      assert.equal(form, COMPACT, `compact: value ${i}`);
      assert.deepEqual(out, deserialize(serialize(value)), `same as a clone: value ${i}`);
    }
    assert.ok(Object.is(roundTrip(-0).out, -0));
  });

  it('sends bigints, typed arrays, buffers and lone surrogates compactly, as a clone would give them', () => {
    const values: unknown[] = [
      10n,
      -(2n ** 200n),
      { id: 9007199254740993n },
      new Int32Array([1, -2]),
      new Float64Array([1.5, -0]),
      new BigInt64Array([1n, -1n]),
      new Uint8ClampedArray([255]),
      new Int16Array(new ArrayBuffer(8), 2, 2),
      new ArrayBuffer(4),
      new DataView(new Uint8Array([1, 2, 3]).buffer),
      'lone \ud800 surrogate',
    ];
    for (const [i, value] of values.entries()) {
      const { form, out } = roundTrip(value);
      assert.equal(form, COMPACT, `compact: value ${i}`);
      assert.deepEqual(out, deserialize(serialize(value)), `same as a clone: value ${i}`);
    }
  });

  it('sends anything else as a structured clone, and it comes back as one', () => {
    class Point {
      x = 1;
    }
    const values: unknown[] = [
      new Map([['a', 1]]),
      new Set([1]),
      /re/g,
      holey(),
      new Point(),
      { nested: { deep: new Map() } },
      { 'key \udc00': 1 },
      10n ** 5000n,
    ];
    for (const [i, value] of values.entries()) {
      const { form, out } = roundTrip(value);
      assert.equal(form, CLONE, `clone: value ${i}`);
      assert.deepEqual(out, deserialize(serialize(value)));
    }
    assert.equal((roundTrip(holey()).out as unknown[]).length, 3);
    assert.ok(!(1 in (roundTrip(holey()).out as unknown[])), 'the hole survives');
  });

  it('fails as structured clone does for what cannot be sent', () => {
    assert.throws(() => encodeFrame(0, { f: () => 1 }), /could not be cloned/);
    assert.throws(() => encodeFrame(0, [Symbol('s')]), /could not be cloned/);
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    assert.throws(() => encodeFrame(0, revoked.proxy));
  });

  it('gives plain Uint8Array copies for bytes, whichever form carried them', () => {
    const source = Buffer.from('abc');
    const { out } = roundTrip({ b: source });
    const bytes = (out as { b: Uint8Array }).b;
    assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
    assert.deepEqual([...bytes], [97, 98, 99]);
    const wire = encodeFrame(0, { b: source });
    const decoded = decodePayload(wire) as { b: Uint8Array };
    wire.fill(0);
    assert.deepEqual([...decoded.b], [97, 98, 99], 'a copy, not a view of the payload');
    const cloned = roundTrip({ b: Buffer.from('x'), n: 1n }, true).out as { b: Uint8Array };
    assert.equal(Object.getPrototypeOf(cloned.b), Uint8Array.prototype);
  });

  it('makes a "__proto__" key an own property, as structured clone does', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const out = roundTrip(value).out as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ['__proto__', 'a']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('writes a value whose getter makes another call without mixing the two', () => {
    let inner: Uint8Array | undefined;
    const value = {
      a: 'outer',
      get b() {
        inner = encodeFrame(0, { inner: 'x'.repeat(10_000) });
        return 2;
      },
    };
    const out = decodePayload(encodeFrame(0, value));
    assert.deepEqual(out, { a: 'outer', b: 2 });
    assert.deepEqual(decodePayload(inner as Uint8Array), { inner: 'x'.repeat(10_000) });
  });

  it('leaves room for the frame header the caller fills', () => {
    for (const value of ['hi', 1n]) {
      const bytes = encodeFrame(9, value);
      assert.equal(bytes.byteLength, 9 + encodeFrame(0, value).byteLength);
      assert.equal(decodePayload(bytes.subarray(9)), value);
    }
  });

  it('refuses malformed payloads rather than reading past them', () => {
    const good = encodeFrame(0, { binding: 'KV', op: 'get', args: ['k'] });
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array()],
      ['unknown form', new Uint8Array([9, 1])],
      ['cut short', good.subarray(0, good.byteLength - 1)],
      ['bytes after the value', new Uint8Array([...good, 1])],
      ['unknown tag', new Uint8Array([COMPACT, 200])],
      ['array count past the payload', new Uint8Array([COMPACT, 8, 255, 255, 255, 255])],
      ['object count past the payload', new Uint8Array([COMPACT, 9, 0, 0, 0, 64, 0])],
      ['string length past the payload', new Uint8Array([COMPACT, 6, 10, 0, 0, 0, 65])],
      ['bytes length past the payload', new Uint8Array([COMPACT, 7, 255, 255, 255, 127])],
      ['int cut short', new Uint8Array([COMPACT, 4, 1, 2])],
    ];
    for (const [what, bytes] of cases) assert.throws(() => decodePayload(bytes), Error, what);
    // Nested past the limit: refused, not a stack overflow.
    const deep = [COMPACT];
    for (let i = 0; i < 100_000; i++) deep.push(8, 1, 0, 0, 0);
    deep.push(1);
    assert.throws(() => decodePayload(new Uint8Array(deep)), /nested too deep/);
  });

  it('refuses a payload holding more values than its reader allows, before making them', () => {
    const many = encodeFrame(0, { args: new Array(50_000).fill(null) });
    assert.equal((decodePayload(many, false, 60_000) as { args: unknown[] }).args.length, 50_000);
    assert.throws(() => decodePayload(many, false, 40_000), PayloadTooLarge);
    const keys = encodeFrame(0, Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])));
    assert.throws(() => decodePayload(keys, false, 99), PayloadTooLarge);
  });

  it('sends values nested deeper than the compact form allows as a structured clone', () => {
    let value: unknown = 'leaf';
    for (let i = 0; i < 300; i++) value = [value];
    const { form, out } = roundTrip(value);
    assert.equal(form, CLONE);
    assert.deepEqual(out, value);
  });
});
