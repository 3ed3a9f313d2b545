/**
 * Multipart uploads of the S3 provider: S3's own multipart calls, one each, on the object's full S3
 * key. S3 keeps the upload and its parts; its answers for an unknown upload, a small part or an
 * unknown part become the embedded provider's errors (multipartCall). The provider checks keys,
 * part numbers and parts before they get here.
 */
import { bareEtag } from './checks.js';
import type { BucketObject, UploadedPart } from './interface.js';
import { multipartCall, s3Call, status } from './s3-errors.js';
import type { S3Context } from './s3-helpers.js';
import { toS3Http, toS3Metadata } from './s3-metadata.js';

/** Starts an upload to `s3Key`, with the object's metadata (checked); answers S3's upload id. */
export async function createUpload(
  ctx: S3Context,
  s3Key: string,
  meta: Pick<BucketObject, 'httpMetadata' | 'customMetadata'>,
): Promise<string> {
  const res = await s3Call(ctx.failure, () =>
    ctx.client.send(
      new ctx.s3.CreateMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: s3Key,
        Metadata: toS3Metadata(meta.customMetadata, meta.httpMetadata),
        ...toS3Http(meta.httpMetadata),
      }),
    ),
  );
  if (!res.UploadId) throw ctx.failure(new Error('the store answered no upload id'));
  return res.UploadId;
}

/** Stores part `partNumber` of upload `uploadId` of `key` (stored as `s3Key`). */
export async function writePart(
  ctx: S3Context,
  key: string,
  s3Key: string,
  uploadId: string,
  partNumber: number,
  body: Uint8Array,
): Promise<UploadedPart> {
  const res = await multipartCall(key, ctx.failure, () =>
    ctx.client.send(
      new ctx.s3.UploadPartCommand({
        Bucket: ctx.bucket,
        Key: s3Key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.byteLength,
      }),
    ),
  );
  return { partNumber, etag: bareEtag(res.ETag ?? '') };
}

/** Joins the parts (checked: in order, bare etags) into the object `key` (stored as `s3Key`). */
export async function completeUpload(
  ctx: S3Context,
  key: string,
  s3Key: string,
  uploadId: string,
  parts: UploadedPart[],
): Promise<void> {
  await multipartCall(key, ctx.failure, () =>
    ctx.client.send(
      new ctx.s3.CompleteMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: s3Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
      }),
    ),
  );
}

/** Drops an upload and its parts. */
export async function abortUpload(ctx: S3Context, s3Key: string, uploadId: string): Promise<void> {
  try {
    await ctx.client.send(
      new ctx.s3.AbortMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: s3Key,
        UploadId: uploadId,
      }),
    );
  } catch (err) {
    // An upload that is not there is already gone, as R2's abort() treats it.
    if (status(err) === 404) return;
    throw ctx.failure(err);
  }
}
