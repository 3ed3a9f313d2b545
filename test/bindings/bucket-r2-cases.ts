/**
 * The R2 part of the Bucket conformance suite: checksums, versions, conditional reads and writes
 * (onlyIf) and multipart uploads, through the Bucket kind's operations where the kind does the
 * work (checksums), against each provider.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import type { BucketObject, BucketProvider } from '../../src/bindings/bucket/interface.js';
import { bucketKind } from '../../src/bindings/bucket/kind.js';
import type { Handles } from '../../src/bindings/kind.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import type { KylixError } from '../../src/errors.js';

const text = (s: string) => new TextEncoder().encode(s);
const digest = (algorithm: string, b: Uint8Array) => createHash(algorithm).update(b).digest('hex');
const code = (c: string) => (e: KylixError) => e.code === c;
const noHandles: Handles = { grant: () => {}, owns: () => false, release: () => {} };

/** Test-server gaps that skip a case, each with its reason. */
export interface R2Quirks {
  /** The server does not refuse parts under 5 MiB. */
  partSize?: string;
  /** The server cannot abort multipart uploads. */
  abort?: string;
  /** The server keeps no upload state: any part etag completes, parts arrive after complete, one-part etag. */
  partEtag?: string;
}

async function bytesOf(body: AsyncIterable<Uint8Array> | null | undefined): Promise<string> {
  assert.ok(body, 'a body');
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString();
}

/** Registers the R2 cases; `bucket()` and `fresh()` come from the suite. */
export function r2Cases(
  bucket: () => BucketProvider,
  fresh: () => Promise<ResourceRef>,
  quirks: R2Quirks = {},
) {
  const putOp = (ref: ResourceRef, key: string, body: Uint8Array, options: Record<string, unknown>) =>
    bucketKind.ops.put.run(bucket(), bucketKind.ops.put.args.parse([key, body, options]), {
      ref,
      handles: noHandles,
    }) as Promise<BucketObject | null>;

  it('R2: keeps md5 and the SHA digests a put was given, and refuses a put whose digest does not match', async () => {
    const ref = await fresh();
    const body = text('checked bytes');
    const put = await putOp(ref, 'k', body, { sha256: digest('sha256', body), sha1: digest('sha1', body) });
    const want = { md5: digest('md5', body), sha1: digest('sha1', body), sha256: digest('sha256', body) };
    assert.deepEqual(put?.checksums, want);
    assert.deepEqual((await bucket().head(ref, 'k'))?.checksums, want);
    assert.deepEqual((await bucket().get(ref, 'k'))?.object.checksums, want);
    assert.deepEqual(
      (await bucket().list(ref)).objects[0]?.checksums,
      { md5: want.md5 },
      'listings carry md5',
    );
    await assert.rejects(
      putOp(ref, 'k', text('other bytes'), { md5: digest('md5', body) }),
      code('ERR_BINDING_BAD_ARGUMENTS'),
    );
    assert.equal(await bytesOf((await bucket().get(ref, 'k'))?.body), 'checked bytes', 'nothing was stored');
  });

  it('R2: gives each upload its own version, the same from put, head, get and list', async () => {
    const ref = await fresh();
    const one = await bucket().put(ref, 'v', text('one'));
    const two = await bucket().put(ref, 'v', text('two'));
    assert.ok(one && two);
    assert.notEqual(one.version, two.version);
    assert.equal((await bucket().head(ref, 'v'))?.version, two.version);
    assert.equal((await bucket().get(ref, 'v'))?.object.version, two.version);
    assert.equal((await bucket().list(ref)).objects[0]?.version, two.version);
  });

  it('R2: get with onlyIf answers the object without a body when the precondition fails', async () => {
    const ref = await fresh();
    const put = await bucket().put(ref, 'c', text('conditional'));
    assert.ok(put);
    const past = new Date(Date.parse(put.uploaded) - 60_000).toISOString();
    const future = new Date(Date.parse(put.uploaded) + 60_000).toISOString();
    const get = (onlyIf: Record<string, unknown>) => bucket().get(ref, 'c', { onlyIf });
    for (const onlyIf of [
      { etagMatches: ['"nope"'] },
      { etagDoesNotMatch: [put.etag] },
      { etagDoesNotMatch: ['*'] },
      { uploadedAfter: future },
      { uploadedBefore: past },
    ]) {
      const got = await get(onlyIf);
      assert.equal(got?.body, null, JSON.stringify(onlyIf));
      assert.equal(got?.object.etag, put.etag);
    }
    for (const onlyIf of [
      { etagMatches: [`"${put.etag}"`] },
      { etagMatches: ['*'] },
      { etagDoesNotMatch: ['other'] },
      { uploadedAfter: past },
      { uploadedBefore: future },
      // If-Match wins over If-Unmodified-Since (RFC 9110): the date is not looked at.
      { etagMatches: [put.etag], uploadedBefore: past },
    ])
      assert.equal(await bytesOf((await get(onlyIf))?.body), 'conditional', JSON.stringify(onlyIf));
    assert.equal(await bucket().get(ref, 'missing', { onlyIf: { etagMatches: ['x'] } }), null);
  });

  it('R2: put with onlyIf stores only when the precondition holds, else answers null', async () => {
    const ref = await fresh();
    const created = await bucket().put(ref, 'p', text('v1'), { onlyIf: { etagDoesNotMatch: ['*'] } });
    assert.ok(created, 'create-only succeeds when the key is free');
    assert.equal(await bucket().put(ref, 'p', text('v2'), { onlyIf: { etagDoesNotMatch: ['*'] } }), null);
    assert.equal(await bucket().put(ref, 'p', text('v2'), { onlyIf: { etagMatches: ['stale'] } }), null);
    assert.equal(await bytesOf((await bucket().get(ref, 'p'))?.body), 'v1');
    const swapped = await bucket().put(ref, 'p', text('v2'), { onlyIf: { etagMatches: [created.etag] } });
    assert.equal(swapped?.etag, digest('md5', text('v2')));
    assert.equal(await bucket().put(ref, 'q', text('x'), { onlyIf: { etagMatches: ['*'] } }), null);
    assert.equal(await bucket().head(ref, 'q'), null);
  });

  it('R2: multipart uploads join their parts in order, keeping the upload’s metadata', async () => {
    const ref = await fresh();
    const id = await bucket().createMultipartUpload(ref, 'big', {
      httpMetadata: { contentType: 'text/plain' },
      customMetadata: { who: 'ada' },
    });
    const first = new Uint8Array(5 * 1024 * 1024).fill(97);
    // Out of order, and part 2 sent twice: the second one counts.
    const p2old = await bucket().uploadPart(ref, 'big', id, 2, text('old'));
    const p2 = await bucket().uploadPart(ref, 'big', id, 2, text('-tail'));
    assert.notEqual(p2.etag, p2old.etag);
    const p1 = await bucket().uploadPart(ref, 'big', id, 1, first);
    assert.deepEqual(p1, { partNumber: 1, etag: digest('md5', first) });
    if (!quirks.partEtag)
      await assert.rejects(
        bucket().completeMultipartUpload(ref, 'big', id, [p1, { partNumber: 2, etag: 'wrong' }]),
        (e: KylixError) => e.code === 'ERR_NOT_FOUND' || e.code === 'ERR_BINDING_BAD_ARGUMENTS',
      );
    const done = await bucket().completeMultipartUpload(ref, 'big', id, [p2, p1]);
    assert.equal(done.size, first.length + 5);
    if (!quirks.partEtag) assert.match(done.etag, /-2$/, 'a multipart etag, as S3 and R2 make it');
    assert.deepEqual(done.customMetadata, { who: 'ada' });
    assert.equal(done.httpMetadata.contentType, 'text/plain');
    const got = await bucket().get(ref, 'big', { range: { offset: first.length - 2 } });
    assert.equal(await bytesOf(got?.body), 'aa-tail');
    if (!quirks.partEtag) {
      await assert.rejects(bucket().uploadPart(ref, 'big', id, 3, text('late')), code('ERR_NOT_FOUND'));
      await assert.rejects(
        bucket().uploadPart(ref, 'other', 'not-an-upload', 1, text('x')),
        code('ERR_NOT_FOUND'),
      );
    }
  });

  it('R2: refuses to complete an upload whose early part is under 5 MiB', {
    skip: quirks.partSize,
  }, async () => {
    const ref = await fresh();
    const id = await bucket().createMultipartUpload(ref, 'small');
    const p1 = await bucket().uploadPart(ref, 'small', id, 1, text('tiny'));
    const p2 = await bucket().uploadPart(ref, 'small', id, 2, text('tail'));
    await assert.rejects(
      bucket().completeMultipartUpload(ref, 'small', id, [p1, p2]),
      code('ERR_BINDING_BAD_ARGUMENTS'),
    );
    assert.equal(await bucket().head(ref, 'small'), null);
  });

  it('R2: an aborted upload takes no more parts and stores nothing', { skip: quirks.abort }, async () => {
    const ref = await fresh();
    const id = await bucket().createMultipartUpload(ref, 'gone');
    await bucket().uploadPart(ref, 'gone', id, 1, text('x'));
    await bucket().abortMultipartUpload(ref, 'gone', id);
    await assert.rejects(bucket().uploadPart(ref, 'gone', id, 2, text('y')), code('ERR_NOT_FOUND'));
    assert.equal(await bucket().head(ref, 'gone'), null);
  });
}
