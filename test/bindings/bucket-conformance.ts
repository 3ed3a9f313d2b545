/**
 * The Bucket conformance suite: what a user of the binding would notice, asserted the same way
 * against every provider. bucket.test.ts runs it once per provider.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BUCKET_LIMITS, type BucketProvider } from '../../src/bindings/bucket/interface.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import type { KylixError } from '../../src/errors.js';
import { type R2Quirks, r2Cases } from './bucket-r2-cases.js';
import { collidingGroups } from './colliding-refs.js';

/** How the suite gets a provider. */
export interface BucketHarness {
  /** Shown in the test names: "embedded", "s3". */
  name: string;
  /** Set when the backend cannot be reached: the suite is skipped with this reason. */
  skip?: string;
  open(): Promise<BucketProvider>;
  /** Closes and opens the same storage again (providers whose data lives on this machine). */
  reopen?(provider: BucketProvider): Promise<BucketProvider>;
  /** Asserts that nothing was written outside the provider's own folder (path traversal). */
  assertContained?(): void;
  /** True when the provider refuses keys with "." or ".." segments (ERR_BINDING_BAD_ARGUMENTS) instead of storing them. */
  refusesDotSegments?: boolean;
  /** Behaviours the test server gets wrong, each with the reason its assertions are skipped. */
  quirks?: {
    suffixRange?: string;
    delimiterPaging?: string;
    prefixOrder?: string;
    emptySegments?: string;
  } & R2Quirks;
}

const text = (s: string) => new TextEncoder().encode(s);
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const code = (c: string) => (e: KylixError) => e.code === c;

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Registers the suite for one provider. */
export function bucketConformance(h: BucketHarness): void {
  describe(`Bucket conformance: ${h.name}`, { skip: h.skip }, () => {
    let bucket: BucketProvider;
    /** put() that must store (no onlyIf): its object. */
    const store = async (...args: Parameters<BucketProvider['put']>) => {
      const stored = await bucket.put(...args);
      assert.ok(stored, 'a put without onlyIf stores');
      return stored;
    };
    const used: ResourceRef[] = [];
    const fresh = async (): Promise<ResourceRef> => {
      const ref = { namespace: 'conformance', name: `b-${randomUUID().slice(0, 8)}` };
      used.push(ref);
      await bucket.ensure(ref);
      return ref;
    };
    const read = async (ref: ResourceRef, key: string, range?: Parameters<BucketProvider['get']>[2]) => {
      const got = await bucket.get(ref, key, range);
      // A read without onlyIf always has a body; one with onlyIf is read with bucket.get itself.
      return got && { ...got, bytes: await collect(got.body ?? (async function* () {})()) };
    };
    /** Every entry of a listing, following cursors: objects as keys, prefixes marked with "dir:". */
    const listAll = async (
      ref: ResourceRef,
      options: { prefix?: string; delimiter?: string; limit?: number },
    ) => {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const res = await bucket.list(ref, { ...options, cursor });
        if (options.limit) {
          assert.ok(
            res.objects.length + res.delimitedPrefixes.length <= options.limit,
            'a page holds at most limit',
          );
        }
        seen.push(...res.objects.map((o) => o.key), ...res.delimitedPrefixes.map((p) => `dir:${p}`));
        if (!res.truncated) return seen;
        assert.ok(res.cursor, 'a truncated page carries a cursor');
        cursor = res.cursor;
      }
      throw new Error('the listing never completed');
    };

    before(async () => {
      bucket = await h.open();
    });
    r2Cases(() => bucket, fresh, h.quirks);
    after(async () => {
      for (const ref of used) await bucket.purge(ref).catch(() => {});
      await bucket.close();
    });

    it('round-trips text and binary objects, and answers null for a missing one', async () => {
      const ref = await fresh();
      const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
      await bucket.put(ref, 'hello.txt', text('héllo 👋'));
      await bucket.put(ref, 'bin', binary);
      await bucket.put(ref, 'empty', new Uint8Array(0));
      assert.equal((await read(ref, 'hello.txt'))?.bytes.toString(), 'héllo 👋');
      assert.deepEqual((await read(ref, 'bin'))?.bytes, Buffer.from(binary));
      const empty = await read(ref, 'empty');
      assert.equal(empty?.bytes.length, 0);
      assert.equal(empty?.object.size, 0);
      assert.equal(await bucket.get(ref, 'missing'), null);
      assert.equal(await bucket.head(ref, 'missing'), null);
    });

    it('reports size, an MD5 etag and the upload time, the same from put, head, get and list', async () => {
      const ref = await fresh();
      const body = text('some content for the etag');
      const before = Date.now();
      const put = await store(ref, 'doc', body);
      assert.equal(put.key, 'doc');
      assert.equal(put.size, body.length);
      assert.equal(put.etag, md5(body));
      const uploaded = Date.parse(put.uploaded);
      assert.ok(
        uploaded >= before - 2000 && uploaded <= Date.now() + 2000,
        `uploaded ${put.uploaded} is now`,
      );
      assert.deepEqual(await bucket.head(ref, 'doc'), put);
      assert.deepEqual((await read(ref, 'doc'))?.object, put);
      const listed = (await bucket.list(ref)).objects[0];
      assert.deepEqual(listed, { ...put, httpMetadata: {}, customMetadata: {} });
      assert.deepEqual(put.checksums, { md5: md5(body) });
      assert.match(put.version, /^[0-9a-f]{16,}$/);
    });

    it('keeps http and custom metadata, exactly as written', async () => {
      const ref = await fresh();
      const httpMetadata = {
        contentType: 'text/markdown; charset=utf-8',
        contentLanguage: 'fr',
        contentDisposition: 'attachment; filename="a.md"',
        cacheControl: 'max-age=60',
      };
      const customMetadata = {
        author: 'ada',
        'Mixed-Case': 'Yes',
        note: 'with spaces and ümlauts ✓',
        empty: '',
      };
      const put = await store(ref, 'a.md', text('# hi'), { httpMetadata, customMetadata });
      assert.deepEqual(put.httpMetadata, httpMetadata);
      assert.deepEqual(put.customMetadata, customMetadata);
      const head = await bucket.head(ref, 'a.md');
      assert.deepEqual(head?.httpMetadata, httpMetadata);
      assert.deepEqual(head?.customMetadata, customMetadata);
      const plain = await store(ref, 'plain', text('x'));
      assert.deepEqual([plain.httpMetadata, plain.customMetadata], [{}, {}]);
      const listed = await bucket.list(ref, { include: ['httpMetadata', 'customMetadata'] });
      assert.deepEqual(listed.objects[0]?.customMetadata, customMetadata);
      assert.deepEqual(listed.objects[0]?.httpMetadata, httpMetadata);
    });

    it('overwrites an object: body and metadata together', async () => {
      const ref = await fresh();
      await bucket.put(ref, 'k', text('old body'), { customMetadata: { v: '1' } });
      const put = await store(ref, 'k', text('new'));
      const got = await read(ref, 'k');
      assert.equal(got?.bytes.toString(), 'new');
      assert.deepEqual(got?.object, put);
      assert.deepEqual(got?.object.customMetadata, {});
      assert.deepEqual(await listAll(ref, {}), ['k']);
    });

    it('reads byte ranges: offset and length, offset to the end, past the end', async () => {
      const ref = await fresh();
      await bucket.put(ref, 'abc', text('0123456789'));
      const mid = await read(ref, 'abc', { range: { offset: 2, length: 3 } });
      assert.equal(mid?.bytes.toString(), '234');
      assert.deepEqual(mid?.range, { offset: 2, length: 3 });
      assert.equal(mid?.object.size, 10);
      const tail = await read(ref, 'abc', { range: { offset: 7 } });
      assert.equal(tail?.bytes.toString(), '789');
      assert.deepEqual(tail?.range, { offset: 7, length: 3 });
      const clamped = await read(ref, 'abc', { range: { offset: 8, length: 100 } });
      assert.equal(clamped?.bytes.toString(), '89');
      assert.deepEqual(clamped?.range, { offset: 8, length: 2 });
      assert.equal((await read(ref, 'abc'))?.range, undefined);
      await assert.rejects(
        bucket.get(ref, 'abc', { range: { offset: 10 } }),
        code('ERR_RANGE_NOT_SATISFIABLE'),
      );
      await assert.rejects(
        bucket.get(ref, 'abc', { range: { offset: -1 } }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      await assert.rejects(
        bucket.get(ref, 'abc', { range: { offset: 0, length: 0 } }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
    });

    it('reads suffix ranges (the last n bytes)', { skip: h.quirks?.suffixRange }, async () => {
      const ref = await fresh();
      await bucket.put(ref, 'abc', text('0123456789'));
      const last = await read(ref, 'abc', { range: { suffix: 3 } });
      assert.equal(last?.bytes.toString(), '789');
      assert.deepEqual(last?.range, { offset: 7, length: 3 });
      const all = await read(ref, 'abc', { range: { suffix: 50 } });
      assert.equal(all?.bytes.toString(), '0123456789');
      assert.deepEqual(all?.range, { offset: 0, length: 10 });
    });

    it('deletes one object or many at once, missing ones included', async () => {
      const ref = await fresh();
      for (const k of ['a', 'b', 'c', 'd']) await bucket.put(ref, k, text(k));
      await bucket.delete(ref, 'a');
      await bucket.delete(ref, ['b', 'c', 'not-there']);
      await bucket.delete(ref, []);
      assert.equal(await bucket.head(ref, 'a'), null);
      assert.equal(await bucket.get(ref, 'c'), null);
      assert.deepEqual(await listAll(ref, {}), ['d']);
    });

    it('lists in UTF-8 byte order, by prefix, page by page', async () => {
      const ref = await fresh();
      const keys = ['b', 'a-b', 'A', 'é', '😀', '\uffff', 'ab', 'a0'];
      for (const k of keys) await bucket.put(ref, k, text(k));
      const bytesOrder = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      assert.deepEqual(await listAll(ref, {}), bytesOrder);
      assert.deepEqual(await listAll(ref, { limit: 3 }), bytesOrder);
      assert.deepEqual(await listAll(ref, { prefix: 'a', limit: 2 }), ['a-b', 'a0', 'ab']);
      const page = await bucket.list(ref, { limit: 1000 });
      assert.equal(page.truncated, false);
      assert.equal(page.cursor, undefined);
    });

    it('sorts a key before the keys that extend it, "/" included', {
      skip: h.quirks?.prefixOrder,
    }, async () => {
      const ref = await fresh();
      const keys = ['a/b', 'a', 'a-b', 'a/a', 'a0', 'a.b'];
      for (const k of keys) await bucket.put(ref, k, text(k));
      assert.deepEqual(await listAll(ref, {}), ['a', 'a-b', 'a.b', 'a/a', 'a/b', 'a0']);
      assert.deepEqual(await listAll(ref, { limit: 2 }), ['a', 'a-b', 'a.b', 'a/a', 'a/b', 'a0']);
      assert.deepEqual(await listAll(ref, { prefix: 'a/' }), ['a/a', 'a/b']);
    });

    it('rolls keys up into delimited prefixes', async () => {
      const ref = await fresh();
      const keys = [
        'photos/2024/a.jpg',
        'photos/2024/b.jpg',
        'photos/2025/c.jpg',
        'photos/cover.jpg',
        'readme',
      ];
      for (const k of keys) await bucket.put(ref, k, text(k));
      const top = await bucket.list(ref, { delimiter: '/' });
      assert.deepEqual(
        top.objects.map((o) => o.key),
        ['readme'],
      );
      assert.deepEqual(top.delimitedPrefixes, ['photos/']);
      const photos = await bucket.list(ref, { prefix: 'photos/', delimiter: '/' });
      assert.deepEqual(
        photos.objects.map((o) => o.key),
        ['photos/cover.jpg'],
      );
      assert.deepEqual(photos.delimitedPrefixes, ['photos/2024/', 'photos/2025/']);
    });

    it('pages through a delimited listing, prefixes counting toward the limit', {
      skip: h.quirks?.delimiterPaging,
    }, async () => {
      const ref = await fresh();
      const keys = ['a/1', 'a/2', 'b', 'c/1', 'd', 'e/x/y', 'f'];
      for (const k of keys) await bucket.put(ref, k, text(k));
      const expected = ['dir:a/', 'b', 'dir:c/', 'd', 'dir:e/', 'f'];
      for (const limit of [1, 2, 4]) {
        const seen = await listAll(ref, { delimiter: '/', limit });
        assert.deepEqual([...seen].sort(), [...expected].sort(), `limit ${limit}`);
      }
    });

    it('keeps keys with "/", ".." and other path syntax inside the bucket', async () => {
      const ref = await fresh();
      const sibling = await fresh();
      const dotted = ['../../etc/passwd', 'a/../../../x', '..', '.', `../${sibling.name}/planted`];
      const odd = ['a\\..\\..\\y', '%2e%2e/z', '~/x', 'a b/c+d'];
      const empty = h.quirks?.emptySegments ? [] : ['/etc/passwd', 'a//b', 'trailing/'];
      const kept = [...odd, ...empty, ...(h.refusesDotSegments ? [] : dotted)];
      for (const k of kept) await bucket.put(ref, k, text(`content of ${k}`));
      for (const k of kept) assert.equal((await read(ref, k))?.bytes.toString(), `content of ${k}`);
      if (h.refusesDotSegments) {
        for (const k of dotted) {
          await assert.rejects(bucket.put(ref, k, text('x')), code('ERR_BINDING_BAD_ARGUMENTS'));
          await assert.rejects(bucket.get(ref, k), code('ERR_BINDING_BAD_ARGUMENTS'));
          await assert.rejects(bucket.delete(ref, k), code('ERR_BINDING_BAD_ARGUMENTS'));
        }
      }
      assert.deepEqual([...(await listAll(ref, {}))].sort(), [...kept].sort());
      assert.deepEqual(await listAll(sibling, {}), [], 'nothing reached the sibling bucket');
      h.assertContained?.();
    });

    it('streams a multi-megabyte body in and out', async () => {
      const ref = await fresh();
      const chunk = 64 * 1024;
      const size = 12 * 1024 * 1024 + 123;
      const hash = createHash('md5');
      async function* body() {
        for (let sent = 0; sent < size; sent += chunk) {
          const part = Buffer.alloc(Math.min(chunk, size - sent), (sent / chunk) % 251);
          hash.update(part);
          yield part;
        }
      }
      const put = await store(ref, 'big.bin', body(), {
        httpMetadata: { contentType: 'application/x-test' },
      });
      const sent = hash.digest('hex');
      assert.equal(put.size, size);
      const got = await bucket.get(ref, 'big.bin');
      const back = createHash('md5');
      let received = 0;
      for await (const c of got!.body!) {
        back.update(c);
        received += c.byteLength;
      }
      assert.equal(received, size);
      assert.equal(back.digest('hex'), sent);
      const tail = await read(ref, 'big.bin', { range: { offset: size - 5 } });
      assert.equal(tail?.bytes.length, 5);
    });

    it('keeps the old object when a streaming put fails midway', async () => {
      const ref = await fresh();
      await bucket.put(ref, 'k', text('old'));
      async function* failing() {
        yield text('partial');
        throw new Error('the client went away');
      }
      await assert.rejects(bucket.put(ref, 'k', failing()));
      await assert.rejects(bucket.put(ref, 'new', failing()));
      assert.equal((await read(ref, 'k'))?.bytes.toString(), 'old');
      assert.deepEqual(await listAll(ref, {}), ['k']);
    });

    it('enforces the limits with clear errors', async () => {
      const ref = await fresh();
      // At the byte limit, in "folders" of 101 bytes (file systems cap one name at 255 bytes).
      const longest = `${'é'.repeat(50)}/`.repeat(8) + 'é'.repeat((BUCKET_LIMITS.maxKeyBytes - 808) / 2);
      assert.equal(Buffer.byteLength(longest), BUCKET_LIMITS.maxKeyBytes);
      await bucket.put(ref, longest, text('ok'));
      assert.equal((await read(ref, longest))?.bytes.toString(), 'ok');
      await assert.rejects(bucket.put(ref, `${longest}x`, text('v')), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(bucket.put(ref, '', text('v')), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(bucket.head(ref, 'lone\udc00'), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(
        bucket.put(ref, 'meta', text('v'), {
          customMetadata: { big: 'x'.repeat(BUCKET_LIMITS.maxCustomMetadataBytes) },
        }),
        code('ERR_BINDING_TOO_LARGE'),
      );
      await assert.rejects(bucket.put(ref, 'str', 'not bytes' as never), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(bucket.list(ref, { limit: 0 }), code('ERR_BINDING_BAD_ARGUMENTS'));
      await assert.rejects(
        bucket.list(ref, { limit: BUCKET_LIMITS.maxListLimit + 1 }),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      await assert.rejects(
        bucket.put({ namespace: 'x', name: '../y' }, 'k', text('v')),
        code('ERR_BINDING_BAD_ARGUMENTS'),
      );
      assert.deepEqual(await listAll(ref, {}), [longest]);
    });

    it('keeps two buckets apart, and purges one without touching the other', async () => {
      const a = await fresh();
      const b = await fresh();
      await bucket.put(a, 'shared', text('in a'));
      await bucket.put(b, 'shared', text('in b'));
      await bucket.put(a, 'only-a', text('x'));
      assert.equal((await read(b, 'shared'))?.bytes.toString(), 'in b');
      await bucket.purge(a);
      assert.equal(await bucket.head(a, 'only-a'), null);
      assert.deepEqual(await listAll(a, {}), []);
      assert.deepEqual(await listAll(b, {}), ['shared']);
    });

    it('keeps apart every group of buckets the old "-" to "_" identifiers folded together', async () => {
      for (const group of collidingGroups()) {
        used.push(...group);
        for (const ref of group) await bucket.ensure(ref);
        for (const [i, ref] of group.entries()) await bucket.put(ref, 'k', text(`tenant ${i}`));
        for (const [i, ref] of group.entries()) {
          assert.equal((await read(ref, 'k'))?.bytes.toString(), `tenant ${i}`, JSON.stringify(ref));
          assert.deepEqual(await listAll(ref, {}), ['k']);
        }
        const [first, ...rest] = group;
        await bucket.purge(first!);
        assert.equal(await bucket.head(first!, 'k'), null);
        for (const [i, ref] of rest.entries())
          assert.equal((await read(ref, 'k'))?.bytes.toString(), `tenant ${i + 1}`, JSON.stringify(ref));
      }
    });

    it('keeps every acknowledged write across a close and reopen', {
      skip: !h.reopen && 'not a local store',
    }, async () => {
      const ref = await fresh();
      const put = await store(ref, 'dir/a', text('1'), { customMetadata: { m: '1' } });
      await bucket.put(ref, 'dir/b', text('2'));
      await bucket.put(ref, 'dir/b', text('2 again'));
      await bucket.put(ref, 'c', text('3'));
      await bucket.delete(ref, 'c');
      bucket = await h.reopen!(bucket);
      assert.deepEqual(await bucket.head(ref, 'dir/a'), put);
      assert.equal((await read(ref, 'dir/b'))?.bytes.toString(), '2 again');
      assert.deepEqual(await listAll(ref, {}), ['dir/a', 'dir/b']);
    });
  });
}
