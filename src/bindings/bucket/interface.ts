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
  /** Differs for every upload of the key (R2's version): the same bytes put twice get two. */
  version: string;
  /**
   * Hex digests: md5 for a single-part upload, and the SHA ones the put was given (and checked).
   * Listings carry only md5 (S3 lists no more); head and get carry all.
   */
  checksums: Checksums;
  httpMetadata: {
    contentType?: string;
    contentLanguage?: string;
    contentDisposition?: string;
    contentEncoding?: string;
    cacheControl?: string;
  };
  customMetadata: Record<string, string>;
}

/** The digests R2 keeps, as lowercase hex. */
export interface Checksums {
  md5?: string;
  sha1?: string;
  sha256?: string;
  sha384?: string;
  sha512?: string;
}

/** The hash algorithms a put may be checked against. */
export const CHECKSUM_ALGORITHMS = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'] as const;

/**
 * R2's onlyIf, evaluated as HTTP preconditions are (RFC 9110): uploadedBefore only without
 * etagMatches, uploadedAfter only without etagDoesNotMatch. Etags are bare; "*" matches any object.
 */
export interface Conditional {
  etagMatches?: string[];
  etagDoesNotMatch?: string[];
  /** ISO 8601. */
  uploadedBefore?: string;
  /** ISO 8601. */
  uploadedAfter?: string;
  /** Compare upload times to the second (as HTTP dates do). */
  secondsGranularity?: boolean;
}

/** What a put is given beside its body. */
export interface PutOptions {
  httpMetadata?: BucketObject['httpMetadata'];
  customMetadata?: Record<string, string>;
  /** Store only when this holds; otherwise put answers null and nothing changes. */
  onlyIf?: Conditional;
  /** Digests already checked against the body (by the kind), to keep with the object. */
  checksums?: Checksums;
}

/** One part of a multipart upload, as uploadPart answers and complete takes it. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/** A byte range: offset+length, offset to the end, or the last `suffix` bytes. */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

/** What get answers: the object, its bytes (null when `onlyIf` does not hold) and the range they are. */
export interface BucketGetResult {
  object: BucketObject;
  body: AsyncIterable<Uint8Array> | null;
  range?: { offset: number; length: number };
}

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
  /** R2's and S3's smallest part but the last. */
  minPartBytes: 5 * 1024 * 1024,
  maxPartNumber: 10_000,
  /** S3's 1024, less the resource's prefix (up to 128 bytes) and an installation prefix (up to 64). */
  maxKeyBytes: 832,
  /** Keys and values of customMetadata together, in UTF-8 bytes. */
  maxCustomMetadataBytes: 2048,
  maxListLimit: 1000,
};

/** A Bucket backend. */
export interface BucketProvider extends Provider {
  /**
   * Streams the body in; resolves with the stored object's metadata once it is durable, or null
   * (nothing stored) when `onlyIf` does not hold.
   */
  put(
    ref: ResourceRef,
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options?: PutOptions,
  ): Promise<BucketObject | null>;
  /** The object and its bytes; `body` is null when `onlyIf` does not hold (R2 answers the R2Object alone). */
  get(
    ref: ResourceRef,
    key: string,
    options?: { range?: ByteRange; onlyIf?: Conditional },
  ): Promise<BucketGetResult | null>;
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
  /** Starts a multipart upload of `key`; answers its upload id. */
  createMultipartUpload(
    ref: ResourceRef,
    key: string,
    options?: Pick<PutOptions, 'httpMetadata' | 'customMetadata'>,
  ): Promise<string>;
  /** Stores one part (1 to 10000; every part but the last at least 5 MiB, checked at complete). */
  uploadPart(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
  ): Promise<UploadedPart>;
  /** Joins the parts, in part-number order, into the object; the upload is then gone. */
  completeMultipartUpload(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    parts: UploadedPart[],
  ): Promise<BucketObject>;
  /** Drops an upload and its parts. */
  abortMultipartUpload(ref: ResourceRef, key: string, uploadId: string): Promise<void>;
}
