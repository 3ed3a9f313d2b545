/**
 * What the S3 provider needs beside its class: an object's metadata from a response, S3's errors
 * as Kylix's, keys and ranges as S3 takes them, and bodies as plain bytes.
 */
import type { Readable } from 'node:stream';
import { KylixError } from '../../errors.js';
import { noSuchUpload } from './checks.js';
import type { BucketObject, ByteRange } from './interface.js';
import { bareEtag, checksumsOf, fromS3Http, fromS3Metadata, uploadedAt, versionOf } from './s3-metadata.js';

/** An object's metadata from a HEAD or GET response. */
export function objectOf(
  key: string,
  size: number,
  res: S3HttpFieldsWithMeta & { ETag?: string; LastModified?: Date },
): BucketObject {
  const etag = bareEtag(res.ETag);
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

/** The HTTP status of an S3 SDK error, if it carries one. */
export function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** A listed key with EncodingType=url: percent-encoded, with "+" for spaces (as S3 does it). */
export function decodeListed(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

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

/** A multipart call: S3's NoSuchUpload, EntityTooSmall and InvalidPart become the embedded store's errors. */
export async function multipartCall<T>(
  key: string,
  failure: (err: unknown) => KylixError,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { name?: string; Code?: string; message?: string };
    const name = e.Code ?? e.name;
    if (name === 'NoSuchUpload' || status(err) === 404) throw noSuchUpload(key);
    if (name === 'EntityTooSmall')
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `A part of "${key}" is smaller than 5 MiB; every part but the last must be at least 5 MiB.`,
      );
    if (name === 'InvalidPart' || name === 'InvalidPartOrder')
      throw Object.assign(noSuchUpload(key), {
        message: `A part given to complete() was not uploaded with that etag: ${e.message}`,
      });
    throw failure(err);
  }
}
