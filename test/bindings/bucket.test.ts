import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openEmbeddedBucket } from '../../src/bindings/bucket/embedded.js';
import { MAX_OPEN_UPLOADS } from '../../src/bindings/bucket/embedded-multipart.js';
import { createBucketProvider } from '../../src/bindings/bucket/index.js';
import type { KylixError } from '../../src/errors.js';
import { startS3rver } from '../helpers/s3rver.js';
import { tempDir } from '../helpers/temp-dir.js';
import { bucketConformance } from './bucket-conformance.js';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill();
});

/** The path (relative to dir) of the one file under dir whose path ends with `end`. */
function fileUnder(dir: string, end: string): string {
  const path = readdirSync(dir, { recursive: true })
    .map(String)
    .find((p) => p.endsWith(end));
  assert.ok(path, `no ${end} on disk`);
  return path;
}

/** Every file path under dir, relative to it. */
function walk(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(dir, join(rel, e.name)) : [join(rel, e.name)],
  );
}

// The embedded provider's data folder sits alone in a temp root, so anything a key smuggled out shows.
const root = tempDir('bucket');
const embeddedDir = join(root, 'buckets');
mkdirSync(embeddedDir);
bucketConformance({
  name: 'embedded',
  open: () => openEmbeddedBucket({ dataDir: embeddedDir }),
  async reopen(provider) {
    await provider.close();
    return openEmbeddedBucket({ dataDir: embeddedDir });
  },
  assertContained() {
    assert.deepEqual(readdirSync(root), ['buckets']);
    const names = walk(embeddedDir);
    assert.ok(
      !names.some((n) => /passwd|\.\.|%2e/.test(n)),
      `no file is named after a key: ${names.join(', ')}`,
    );
  },
});

const startS3 = () => startS3rver(tempDir('bucket'), children);

// KYLIX_TEST_S3_ENDPOINT runs the suite against a real store (MinIO in CI, say) instead of s3rver.
const external = process.env.KYLIX_TEST_S3_ENDPOINT;
const s3 = external ? { endpoint: external } : await startS3();
if (s3.reason) console.log(`# skipping the S3 Bucket suite: ${s3.reason}`);
bucketConformance({
  name: external ? `s3 (${external})` : 's3 (s3rver)',
  skip: s3.reason && `S3 server not available: ${s3.reason}`,
  open: () =>
    createBucketProvider({
      provider: 's3',
      endpoint: s3.endpoint!,
      bucket: process.env.KYLIX_TEST_S3_BUCKET ?? 'kylix-test',
      prefix: `run-${randomUUID().slice(0, 8)}/`,
      forcePathStyle: true,
      credentials: {
        accessKeyId: process.env.KYLIX_TEST_S3_ACCESS_KEY_ID ?? 'S3RVER',
        secretAccessKey: process.env.KYLIX_TEST_S3_SECRET_ACCESS_KEY ?? 'S3RVER',
      },
    }),
  refusesDotSegments: true,
  quirks: external
    ? {}
    : {
        suffixRange: 's3rver 3.7.1 reads "bytes=-n" as "bytes=0-n"',
        delimiterPaging: 's3rver 3.7.1 does not count common prefixes toward max-keys',
        prefixOrder: 's3rver 3.7.1 sorts its file names, so "a" comes after "a-b" and "a/b"',
        emptySegments: 's3rver 3.7.1 fails on keys with empty segments ("a//b", "/a")',
        partSize: 's3rver 3.7.1 does not refuse parts under 5 MiB',
        abort: 's3rver 3.7.1 has no AbortMultipartUpload',
        partEtag:
          's3rver 3.7.1 checks no upload state (part etags at complete, parts after complete) and etags a multipart object as one part',
      },
});

describe('Bucket providers', () => {
  it('refuses a bad config, naming every field', async () => {
    await assert.rejects(
      createBucketProvider({ provider: 's3', bucket: 'No_Such', endpoint: 'ftp://x', partSize: 1 }),
      (e: KylixError) =>
        e.code === 'ERR_CONFIG_INVALID' &&
        ['bucket.bucket', 'bucket.endpoint', 'bucket.partSize'].every((f) =>
          e.causes.some((c) => c.field === f),
        ),
    );
    await assert.rejects(
      createBucketProvider({ provider: 'embedded' } as never),
      (e: KylixError) => e.code === 'ERR_CONFIG_INVALID' && e.causes[0]?.field === 'bucket.dataDir',
    );
  });

  it('reports an unreachable S3 store as a backend error that names it', async () => {
    const bucket = await createBucketProvider({
      provider: 's3',
      endpoint: 'http://127.0.0.1:1',
      bucket: 'kylix',
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    await assert.rejects(
      bucket.head({ namespace: 'default', name: 'x' }, 'k'),
      (e: KylixError) => e.code === 'ERR_BACKEND_UNAVAILABLE' && e.message.includes('127.0.0.1:1'),
    );
    assert.equal((await bucket.health()).ok, false);
    await bucket.close();
  });

  it('embedded: an upload neither completed nor aborted is aborted after 7 days', async () => {
    const dir = tempDir('bucket-uploads');
    const bucket = await openEmbeddedBucket({ dataDir: dir });
    const ref = { namespace: 'default', name: 'b' };
    const old = await bucket.createMultipartUpload(ref, 'k');
    const record = fileUnder(dir, join(old, 'upload.json'));
    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    utimesSync(join(dir, record), eightDaysAgo, eightDaysAgo);
    // The next upload of the bucket sweeps the expired ones.
    const fresh = await bucket.createMultipartUpload(ref, 'k');
    await assert.rejects(
      bucket.uploadPart(ref, 'k', old, 1, new Uint8Array(1)),
      (e: KylixError) => e.code === 'ERR_NOT_FOUND',
    );
    assert.ok((await bucket.uploadPart(ref, 'k', fresh, 1, new Uint8Array(1))).etag);
    await bucket.close();
  });
  it('embedded: a part replaced while the upload completes never mixes into the object', async () => {
    const bucket = await openEmbeddedBucket({ dataDir: tempDir('bucket-race') });
    const ref = { namespace: 'default', name: 'b' };
    const first = new Uint8Array(5 * 1024 * 1024).fill(0x61);
    const other = new Uint8Array(5 * 1024 * 1024).fill(0x62);
    const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
    const outcomes = new Set<string>();
    for (let round = 0; round < 8; round++) {
      const key = `k${round}`;
      const id = await bucket.createMultipartUpload(ref, key);
      const p1 = await bucket.uploadPart(ref, key, id, 1, first);
      const p2 = await bucket.uploadPart(ref, key, id, 2, new Uint8Array([1]));
      // The replacement lands at a different moment of the completion each round.
      const replace = new Promise((r) => setTimeout(r, round)).then(() =>
        bucket.uploadPart(ref, key, id, 1, other),
      );
      const [done] = await Promise.allSettled([
        bucket.completeMultipartUpload(ref, key, id, [p1, p2]),
        replace,
      ]);
      outcomes.add(done.status);
      if (done.status === 'rejected') {
        assert.equal((done.reason as KylixError).code, 'ERR_NOT_FOUND');
        continue;
      }
      const got = await bucket.get(ref, key);
      assert.ok(got);
      const chunks: Uint8Array[] = [];
      for await (const c of got.body ?? []) chunks.push(c);
      const bytes = Buffer.concat(chunks);
      assert.equal(bytes.byteLength, first.byteLength + 1);
      assert.equal(got.object.size, bytes.byteLength);
      assert.equal(
        md5(bytes.subarray(0, first.byteLength)),
        p1.etag,
        `round ${round}: part 1 is not the part listed`,
      );
    }
    assert.ok(outcomes.has('fulfilled'), 'no completion succeeded');
    await bucket.close();
  });

  it('embedded: a part whose bytes no longer match its record is refused at completion, not joined', async () => {
    // What a node that stopped between writing a part's bytes and its record leaves behind.
    const dir = tempDir('bucket-torn');
    const bucket = await openEmbeddedBucket({ dataDir: dir });
    const ref = { namespace: 'default', name: 'b' };
    const id = await bucket.createMultipartUpload(ref, 'k');
    const p1 = await bucket.uploadPart(ref, 'k', id, 1, new Uint8Array(5 * 1024 * 1024).fill(0x61));
    const p2 = await bucket.uploadPart(ref, 'k', id, 2, new Uint8Array([1]));
    const part = fileUnder(dir, join(id, '1'));
    writeFileSync(join(dir, part), new Uint8Array(5 * 1024 * 1024).fill(0x62));
    await assert.rejects(
      bucket.completeMultipartUpload(ref, 'k', id, [p1, p2]),
      (e: KylixError) => e.code === 'ERR_NOT_FOUND' && /Part 1\b/.test(e.message),
    );
    assert.equal(await bucket.head(ref, 'k'), null);
    // The upload is still there: part 1 uploaded again, it completes.
    const again = await bucket.uploadPart(ref, 'k', id, 1, new Uint8Array(5 * 1024 * 1024).fill(0x63));
    assert.equal((await bucket.completeMultipartUpload(ref, 'k', id, [again, p2])).size, 5 * 1024 * 1024 + 1);
    await bucket.close();
  });

  it('embedded: uploads begun all at once stop at the cap', async () => {
    const dir = tempDir('bucket-cap');
    const bucket = await openEmbeddedBucket({ dataDir: dir });
    const ref = { namespace: 'default', name: 'b' };
    const one = await bucket.createMultipartUpload(ref, 'k');
    const record = fileUnder(dir, join(one, 'upload.json'));
    // All but 5 of the cap, written directly (creating them one by one takes four fsyncs each).
    const uploads = join(dir, record, '..', '..');
    for (let i = 1; i < MAX_OPEN_UPLOADS - 5; i++) {
      const id = i.toString(16).padStart(32, '0');
      mkdirSync(join(uploads, id));
      writeFileSync(
        join(uploads, id, 'upload.json'),
        JSON.stringify({ key: 'k', httpMetadata: {}, customMetadata: {} }),
      );
    }
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => bucket.createMultipartUpload(ref, 'k')),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as KylixError).code, 'ERR_TOO_MANY_REQUESTS');
    await bucket.close();
  });
});
