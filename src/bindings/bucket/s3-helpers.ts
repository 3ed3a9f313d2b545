/**
 * What the S3 provider's parts share: the client and bucket every S3 call names, an object's
 * metadata from a response, keys and ranges as S3 takes them, and bodies as plain bytes.
 */
import type { Readable } from 'node:stream';
import type * as S3 from '@aws-sdk/client-s3';
import { KylixError } from '../../errors.js';
import type { ResourceRef } from '../provider.js';
import { bareEtag, checkObjectKey } from './checks.js';
import type { BucketObject, ByteRange } from './interface.js';
import { checksumsOf, fromS3Http, fromS3Metadata, uploadedAt, versionOf } from './s3-metadata.js';

/** What every S3 call needs: the AWS SDK (imported lazily by openS3Bucket), its client and the one bucket. */
export interface S3Context {
  readonly s3: typeof S3;
  readonly client: S3.S3Client;
  /** The S3 bucket that holds every Bucket resource. */
  readonly bucket: string;
  /** A failure as a KylixError that names the store (s3Failure). */
  readonly failure: (err: unknown) => KylixError;
}

/** An object's metadata from a HEAD or GET response. */
export function objectOf(
  key: string,
  size: number,
  res: S3HttpFieldsWithMeta & { ETag?: string; LastModified?: Date },
): BucketObject {
  const etag = bareEtag(res.ETag ?? '');
  const uploaded = uploadedAt(res.LastModified);
  return {
    key,
    size,
    etag,
    uploaded,
    version: versionOf(etag, uploaded),
    checksums: checksumsOf(etag, res.Metadata),
    httpMetadata: fromS3Http(res),
    customMetadata: fromS3Metadata(res.Metadata),
  };
}

type S3HttpFieldsWithMeta = Parameters<typeof fromS3Http>[0];

/**
 * Refuses keys with "." or ".." segments: S3 itself keeps them as they are, but HTTP proxies and
 * some S3-compatible stores resolve them as paths, which could move the object under another
 * resource's prefix. Every call that names a key checks it, reads and deletes included.
 */
export function checkNoDotSegments(key: string): void {
  if (key.split('/').some((s) => s === '.' || s === '..')) {
    throw new KylixError(
      'ERR_BINDING_BAD_ARGUMENTS',
      `The key "${key}" has a "." or ".." segment, which S3-compatible stores may resolve as a path; rename it.`,
    );
  }
}

/** Checks the key of an S3 call: as every provider does (checkObjectKey), then for dot segments. */
export function checkS3Key(ref: ResourceRef, key: string): void {
  checkObjectKey(ref, key);
  checkNoDotSegments(key);
}

/** A range as S3's Range header. */
export function rangeHeader(range: ByteRange): string {
  if ('suffix' in range) return `bytes=-${range.suffix}`;
  if (range.length === undefined) return `bytes=${range.offset}-`;
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/** The response body as plain byte chunks (the SDK hands a Node stream of Buffers). */
export async function* bytesOf(body: Readable | undefined): AsyncGenerator<Uint8Array> {
  if (!body) return;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}
