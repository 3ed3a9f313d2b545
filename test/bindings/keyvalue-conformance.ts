/**
 * The KeyValue conformance suite: what a user of the binding would notice, asserted the same way
 * against every provider. keyvalue.test.ts runs it once per provider.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type KeyValueProvider, KV_LIMITS } from '../../src/bindings/keyvalue/interface.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import type { KylixError } from '../../src/errors.js';
import { collidingGroups } from './colliding-refs.js';

/** How the suite gets a provider. */
export interface KeyValueHarness {
  /** Shown in the test names: "embedded", "redis". */
  name: string;
  /** Set when the backend cannot be reached: the suite is skipped with this reason. */
  skip?: string;
  open(): Promise<KeyValueProvider>;
  /** Closes and opens the same storage again (providers whose data lives in this process). */
  reopen?(provider: KeyValueProvider): Promise<KeyValueProvider>;
}

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const code = (c: string) => (e: KylixError) => e.code === c;
/** Seconds since the epoch, `s` from now. */
const inSeconds = (s: number) => Date.now() / 1000 + s;

/** Registers the suite for one provider. */
export function keyValueConformance(h: KeyValueHarness): void {
  describe(`KeyValue conformance: ${h.name}`, { skip: h.skip }, () => {
    let kv: KeyValueProvider;
    const used: ResourceRef[] = [];
    /** A fresh resource per test, so tests never see each other's keys. */
    const fresh = (): ResourceRef => {
      const ref = { namespace: 'conformance', name: `kv-${randomUUID().slice(0, 8)}` };
      used.push(ref);
      return ref;
    };
    /** Every key of a listing, following cursors. */
    const allKeys = async (ref: ResourceRef, options: { prefix?: string; limit?: number } = {}) => {
      const names: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const res = await kv.list(ref, { ...options, cursor });
        names.push(...res.keys.map((k) => k.name));
        if (res.list_complete) return names;
        assert.ok(res.cursor, 'an incomplete page carries a cursor');
        cursor = res.cursor;
      }
      throw new Error('the listing never completed');
    };

    before(async () => {
      kv = await h.open();
    });
    after(async () => {
      for (const ref of used) await kv.purge(ref).catch(() => {});
      await kv.close();
    });

    it('round-trips text and binary values, and answers null for a missing key', async () => {
      const ref = fresh();
      await kv.ensure(ref);
      const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
      await kv.put(ref, 'greeting', text('héllo wörld 👋'));
      await kv.put(ref, 'bytes', binary);
      await kv.put(ref, 'empty', new Uint8Array(0));
      assert.equal(decode((await kv.get(ref, 'greeting'))?.value), 'héllo wörld 👋');
      assert.deepEqual(Buffer.from((await kv.get(ref, 'bytes'))!.value), Buffer.from(binary));
      assert.equal((await kv.get(ref, 'empty'))?.value.byteLength, 0);
      assert.equal(await kv.get(ref, 'nope'), null);
    });

    it('keeps metadata with the value and shows it in listings', async () => {
      const ref = fresh();
      const metadata = { author: 'ada', tags: ['a', 'b'], n: 1.5, nested: { ok: true } };
      await kv.put(ref, 'with', text('1'), { metadata });
      await kv.put(ref, 'without', text('2'));
      const got = await kv.get(ref, 'with');
      assert.deepEqual(got?.metadata, metadata);
      assert.equal('metadata' in (await kv.get(ref, 'without'))!, false);
      const { keys } = await kv.list(ref);
      assert.deepEqual(keys, [{ name: 'with', metadata }, { name: 'without' }]);
    });

    it('overwrites value, metadata and expiration together', async () => {
      const ref = fresh();
      await kv.put(ref, 'k', text('old'), { metadata: { v: 1 }, expiration: inSeconds(3600) });
      await kv.put(ref, 'k', text('new'));
      const got = await kv.get(ref, 'k');
      assert.equal(decode(got?.value), 'new');
      assert.equal(got?.metadata, undefined);
      assert.equal(got?.expiration, undefined);
    });

    it('deletes a key, and deleting a missing key is not an error', async () => {
      const ref = fresh();
      await kv.put(ref, 'k', text('v'));
      await kv.delete(ref, 'k');
      assert.equal(await kv.get(ref, 'k'), null);
      await kv.delete(ref, 'k');
      await kv.delete(ref, 'never-there');
      assert.deepEqual((await kv.list(ref)).keys, []);
    });

    it('reports a future expiration and refuses one in the past', async () => {
      const ref = fresh();
      const expiration = Math.floor(inSeconds(3600));
      await kv.put(ref, 'k', text('v'), { expiration, metadata: 'm' });
      assert.equal((await kv.get(ref, 'k'))?.expiration, expiration);
      assert.deepEqual((await kv.list(ref)).keys, [{ name: 'k', expiration, metadata: 'm' }]);
      await assert.rejects(
        kv.put(ref, 'old', text('v'), { expiration: inSeconds(-5) }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      await assert.rejects(
        kv.put(ref, 'nan', text('v'), { expiration: Number.NaN }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      assert.equal(await kv.get(ref, 'old'), null);
    });

    it('never returns an entry once it has expired, by get or list', async () => {
      const ref = fresh();
      const expiration = inSeconds(KV_LIMITS.minTtlSeconds + 0.1);
      await kv.put(ref, 'short', text('v'), { expiration });
      await kv.put(ref, 'long', text('v'), { expiration: inSeconds(3600) });
      await kv.put(ref, 'forever', text('v'));
      assert.ok(await kv.get(ref, 'short'), 'the entry is there before it expires');
      // The backend's own clock decides; wait until just past the expiration (about 1.1 s).
      await sleep(Math.max(0, expiration * 1000 - Date.now()) + 30);
      assert.equal(await kv.get(ref, 'short'), null);
      assert.deepEqual(await allKeys(ref), ['forever', 'long']);
      assert.deepEqual(await allKeys(ref, { limit: 1 }), ['forever', 'long']);
    });

    it('lists keys in UTF-8 byte order, filtered by prefix', async () => {
      const ref = fresh();
      const keys = ['b', 'a', 'a/b', 'a-b', 'A', 'é', '😀', '\uffff', 'a/a', 'ab', 'a'.repeat(3)];
      await Promise.all(keys.map((k) => kv.put(ref, k, text(k))));
      const bytesOrder = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(await allKeys(ref), bytesOrder);
      assert.deepEqual(await allKeys(ref, { prefix: 'a/' }), ['a/a', 'a/b']);
      assert.deepEqual(await allKeys(ref, { prefix: 'a' }), ['a', 'a-b', 'a/a', 'a/b', 'aaa', 'ab']);
      assert.deepEqual(await allKeys(ref, { prefix: 'zzz' }), []);
    });

    it('pages through a listing with limit and cursor, exactly once per key', async () => {
      const ref = fresh();
      const names = Array.from({ length: 25 }, (_, i) => `item-${String(i).padStart(2, '0')}`);
      await Promise.all(names.map((n) => kv.put(ref, n, text(n))));
      await kv.put(ref, 'other', text('x'));
      const first = await kv.list(ref, { prefix: 'item-', limit: 10 });
      assert.equal(first.keys.length, 10);
      assert.equal(first.list_complete, false);
      // A key deleted between pages does not disturb the next page.
      await kv.delete(ref, 'item-10');
      const second = await kv.list(ref, { prefix: 'item-', limit: 10, cursor: first.cursor });
      assert.deepEqual(
        second.keys.map((k) => k.name),
        names.slice(11, 21),
      );
      const third = await kv.list(ref, { prefix: 'item-', limit: 10, cursor: second.cursor });
      assert.deepEqual(
        third.keys.map((k) => k.name),
        names.slice(21),
      );
      assert.equal(third.list_complete, true);
      assert.equal(third.cursor, undefined);
      const exact = await kv.list(ref, { prefix: 'item-2', limit: 5 });
      assert.equal(exact.keys.length, 5);
      assert.equal(exact.list_complete, true, 'a page that holds the last key is complete');
      await assert.rejects(kv.list(ref, { cursor: 'not a cursor!' }), code('ERR_BINDING_BAD_ARGUMENTS'));
    });

    it('enforces the limits with clear errors', async () => {
      const ref = fresh();
      const longest = 'é'.repeat(KV_LIMITS.maxKeyBytes / 2);
      await kv.put(ref, longest, text('ok'));
      assert.equal(decode((await kv.get(ref, longest))?.value), 'ok');
      await assert.rejects(kv.put(ref, `${longest}x`, text('v')), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(kv.get(ref, `${longest}x`), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(kv.put(ref, '', text('v')), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(kv.put(ref, 'lone\ud800', text('v')), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(
        kv.put(ref, 'big', new Uint8Array(KV_LIMITS.maxValueBytes + 1)),
        code('ERR_BINDING_TOO_LARGE'),
      );
      await assert.rejects(
        kv.put(ref, 'meta', text('v'), { metadata: 'x'.repeat(KV_LIMITS.maxMetadataBytes) }),
        code('ERR_BINDING_TOO_LARGE'),
      );
      await assert.rejects(
        kv.put(ref, 'fn', text('v'), { metadata: () => 1 }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      await assert.rejects(kv.list(ref, { limit: 0 }), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(
        kv.list(ref, { limit: KV_LIMITS.maxListLimit + 1 }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      await assert.rejects(kv.get({ namespace: '../x', name: 'y' }, 'k'), code('ERR_BINDING_BAD_ARGUMENTS'));
      assert.deepEqual(await allKeys(ref), [longest]);
    });

    it('keeps two resources apart, and purges one without touching the other', async () => {
      const a = fresh();
      const b = fresh();
      await kv.put(a, 'shared', text('in a'));
      await kv.put(b, 'shared', text('in b'));
      await kv.put(a, 'only-a', text('x'));
      assert.equal(decode((await kv.get(a, 'shared'))?.value), 'in a');
      assert.equal(decode((await kv.get(b, 'shared'))?.value), 'in b');
      await kv.delete(a, 'shared');
      assert.equal(decode((await kv.get(b, 'shared'))?.value), 'in b');
      assert.deepEqual(await allKeys(b), ['shared']);
      await kv.purge(a);
      assert.equal(await kv.get(a, 'only-a'), null);
      assert.deepEqual(await allKeys(a), []);
      assert.deepEqual(await allKeys(b), ['shared']);
      // Names that would collide if "-" became "_" stay apart.
      const c = { namespace: 'conformance-x', name: 'y' };
      const d = { namespace: 'conformance', name: 'x-y' };
      used.push(c, d);
      await kv.put(c, 'k', text('c'));
      await kv.put(d, 'k', text('d'));
      assert.equal(decode((await kv.get(c, 'k'))?.value), 'c');
    });

    it('keeps apart every group of resources the old "-" to "_" identifiers folded together', async () => {
      for (const group of collidingGroups()) {
        used.push(...group);
        for (const ref of group) await kv.ensure(ref);
        for (const [i, ref] of group.entries()) await kv.put(ref, 'k', text(`tenant ${i}`));
        for (const [i, ref] of group.entries()) {
          assert.equal(decode((await kv.get(ref, 'k'))?.value), `tenant ${i}`, JSON.stringify(ref));
          assert.deepEqual(await allKeys(ref), ['k']);
        }
        // Purging one tenant leaves the others' data alone (prefix-based deletes included).
        const [first, ...rest] = group;
        await kv.purge(first!);
        assert.equal(await kv.get(first!, 'k'), null);
        for (const [i, ref] of rest.entries())
          assert.equal(decode((await kv.get(ref, 'k'))?.value), `tenant ${i + 1}`, JSON.stringify(ref));
      }
    });

    it('acknowledges many concurrent writes, each readable afterwards', async () => {
      const ref = fresh();
      await Promise.all(Array.from({ length: 300 }, (_, i) => kv.put(ref, `k${i}`, text(String(i)))));
      const values = await Promise.all(Array.from({ length: 300 }, (_, i) => kv.get(ref, `k${i}`)));
      assert.deepEqual(
        values.map((v) => decode(v?.value)),
        Array.from({ length: 300 }, (_, i) => String(i)),
      );
    });

    it('keeps every acknowledged write across a close and reopen', {
      skip: !h.reopen && 'not a local store',
    }, async () => {
      const ref = fresh();
      const gone = fresh();
      await kv.put(ref, 'a', text('1'), { metadata: { m: 1 }, expiration: Math.floor(inSeconds(3600)) });
      await kv.put(ref, 'b', text('2'));
      await kv.put(ref, 'c', text('3'));
      await kv.delete(ref, 'b');
      await kv.put(gone, 'x', text('x'));
      await kv.purge(gone);
      kv = await h.reopen!(kv);
      const a = await kv.get(ref, 'a');
      assert.equal(decode(a?.value), '1');
      assert.deepEqual(a?.metadata, { m: 1 });
      assert.ok(a?.expiration);
      assert.equal(await kv.get(ref, 'b'), null);
      assert.deepEqual(await allKeys(ref), ['a', 'c']);
      assert.deepEqual(await allKeys(gone), []);
    });
  });
}
