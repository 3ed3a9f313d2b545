/**
 * Listing for the S3 provider: one page of ListObjectsV2 as a BucketListResult, the list-and-delete
 * walk that purges a resource's prefix, and the batched delete that purge and delete() share. S3
 * lists keys URL-encoded (decoded here) and without their metadata (fetched with a HEAD per object,
 * and only when the caller asked).
 */
import { bareEtag, type checkListOptions } from './checks.js';
import type { BucketListResult, BucketObject } from './interface.js';
import { s3Call } from './s3-errors.js';
import type { S3Context } from './s3-helpers.js';
import { checksumsOf, uploadedAt, versionOf } from './s3-metadata.js';

/**
 * One page of the keys under `base` (a resource's S3 prefix), answered without that prefix;
 * `head` fetches one object's metadata, for a listing that includes it.
 */
export async function listObjects(
  ctx: S3Context,
  base: string,
  { prefix, delimiter, limit, includeHttp, includeCustom }: ReturnType<typeof checkListOptions>,
  cursor: string | undefined,
  head: (key: string) => Promise<BucketObject | null>,
): Promise<BucketListResult> {
  const page = await s3Call(ctx.failure, () =>
    ctx.client.send(
      new ctx.s3.ListObjectsV2Command({
        Bucket: ctx.bucket,
        Prefix: base + prefix,
        Delimiter: delimiter,
        MaxKeys: limit,
        ContinuationToken: cursor || undefined,
        // XML cannot carry every character a key may hold; S3 then URL-encodes the keys it lists.
        EncodingType: 'url',
      }),
    ),
  );
  const decoded = (s: string | undefined) =>
    page.EncodingType === 'url' ? decodeListed(s ?? '') : (s ?? '');
  let objects: BucketObject[] = (page.Contents ?? []).map((o) => {
    const etag = bareEtag(o.ETag ?? '');
    const uploaded = uploadedAt(o.LastModified);
    return {
      key: decoded(o.Key).slice(base.length),
      size: o.Size ?? 0,
      etag,
      uploaded,
      version: versionOf(etag, uploaded),
      checksums: checksumsOf(etag),
      httpMetadata: {},
      customMetadata: {},
    };
  });
  if (includeHttp || includeCustom) objects = await withMetadata(objects, includeHttp, includeCustom, head);
  const result: BucketListResult = {
    objects,
    delimitedPrefixes: (page.CommonPrefixes ?? []).map((p) => decoded(p.Prefix).slice(base.length)),
    truncated: page.IsTruncated ?? false,
  };
  if (result.truncated && page.NextContinuationToken) result.cursor = page.NextContinuationToken;
  return result;
}

/** Deletes every object under `prefix` (a resource's whole S3 prefix, for purge), page by page. */
export async function deletePrefix(ctx: S3Context, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3Call(ctx.failure, () =>
      ctx.client.send(
        new ctx.s3.ListObjectsV2Command({
          Bucket: ctx.bucket,
          Prefix: prefix,
          ContinuationToken: token,
        }),
      ),
    );
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
    await deleteKeys(ctx, keys);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Deletes full S3 keys, 1000 (S3's most per request) at a time. */
export async function deleteKeys(ctx: S3Context, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const res = await s3Call(ctx.failure, () =>
      ctx.client.send(
        new ctx.s3.DeleteObjectsCommand({
          Bucket: ctx.bucket,
          Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
        }),
      ),
    );
    const failed = res.Errors?.[0];
    if (failed)
      throw ctx.failure(new Error(`could not delete "${failed.Key}": ${failed.Code} ${failed.Message}`));
  }
}

/** A listed key with EncodingType=url: percent-encoded, with "+" for spaces (as S3 does it). */
function decodeListed(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/** S3 lists no metadata: fetch it with a HEAD per object, a few at a time, when the caller asked. */
async function withMetadata(
  objects: BucketObject[],
  http: boolean,
  custom: boolean,
  head: (key: string) => Promise<BucketObject | null>,
): Promise<BucketObject[]> {
  const out = [...objects];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < out.length; i = next++) {
      const full = await head(out[i]!.key);
      if (full) {
        out[i] = {
          ...out[i]!,
          httpMetadata: http ? full.httpMetadata : {},
          customMetadata: custom ? full.customMetadata : {},
        };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, out.length) }, worker));
  return out;
}
