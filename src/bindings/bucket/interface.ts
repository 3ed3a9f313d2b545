/**
 * The Bucket binding: R2 shapes (get with ranges, streaming put with content type and custom
 * metadata, head, delete, list with prefix/delimiter/cursor and etags). Providers: embedded (a
 * folder in the data folder) and s3 (any S3-compatible store).
 */
import type { Provider, ResourceRef } from '../provider.js';

/** An object's metadata, as R2's R2Object has it. */
export interface BucketObject {
  key: string;
  size: number;
  /** The entity tag without quotes (an MD5 hex digest for single-part uploads). */
  etag: string;
  /** ISO 8601. */
  uploaded: string;
  httpMetadata: {
    contentType?: string;
    contentLanguage?: string;
    contentDisposition?: string;
    contentEncoding?: string;
    cacheControl?: string;
  };
  customMetadata: Record<string, string>;
}

/** A byte range: offset+length, offset to the end, or the last `suffix` bytes. */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

/** One page of a listing. */
export interface BucketListResult {
  objects: BucketObject[];
  /** With a delimiter: the "folders" at this level. */
  delimitedPrefixes: string[];
  truncated: boolean;
  cursor?: string;
}

/** Limits every provider enforces the same way (R2's; S3 allows no more custom metadata). */
export const BUCKET_LIMITS = {
  /** S3's 1024, less the resource's prefix (up to 128 bytes) and an installation prefix (up to 64). */
  maxKeyBytes: 832,
  /** Keys and values of customMetadata together, in UTF-8 bytes. */
  maxCustomMetadataBytes: 2048,
  maxListLimit: 1000,
};

/** A Bucket backend. */
export interface BucketProvider extends Provider {
  /** Streams the body in; resolves with the stored object's metadata once it is durable. */
  put(
    ref: ResourceRef,
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options?: { httpMetadata?: BucketObject['httpMetadata']; customMetadata?: Record<string, string> },
  ): Promise<BucketObject>;
  get(
    ref: ResourceRef,
    key: string,
    options?: { range?: ByteRange },
  ): Promise<{
    object: BucketObject;
    body: AsyncIterable<Uint8Array>;
    range?: { offset: number; length: number };
  } | null>;
  head(ref: ResourceRef, key: string): Promise<BucketObject | null>;
  delete(ref: ResourceRef, keys: string | string[]): Promise<void>;
  list(
    ref: ResourceRef,
    options?: {
      prefix?: string;
      delimiter?: string;
      cursor?: string;
      limit?: number;
      /** As R2: listed objects carry httpMetadata/customMetadata only when asked (S3 needs a HEAD each). */
      include?: ('httpMetadata' | 'customMetadata')[];
    },
  ): Promise<BucketListResult>;
}
