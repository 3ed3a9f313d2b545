/**
 * The S3 Bucket provider: any S3-compatible store (AWS S3, MinIO, Ceph, R2, Garage, …) through
 * @aws-sdk/client-s3, imported only when this provider is chosen.
 *
 * One S3 bucket serves every Bucket resource, each under its own key prefix
 * `<prefix><namespace>/<name>/`. Why not one S3 bucket per resource: bucket names are global
 * (on AWS) and capped per account, creating one needs more rights than object access, and most
 * stores cap their number; a prefix needs nothing but the one bucket, and purge is a prefix delete.
 *
 * This file holds the provider and its object calls; beside it: s3-list.ts (listing and purge),
 * s3-multipart.ts (multipart uploads), s3-metadata.ts (R2's metadata in S3's), s3-errors.ts (S3's
 * failures as Kylix's) and s3-helpers.ts (what those share).
 */
import type { Readable } from 'node:stream';
import type * as S3 from '@aws-sdk/client-s3';
import type { Upload as UploadClass } from '@aws-sdk/lib-storage';
import { KylixError } from '../../errors.js';
import { checkRef } from '../arguments.js';
import { resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import {
  bodyChunks,
  checkCompletedParts,
  checkConditional,
  checkDeleteKeys,
  checkListOptions,
  checkPartNumber,
  checkPutOptions,
  checkRange,
  conditionHolds,
} from './checks.js';
import {
  BUCKET_LIMITS,
  type BucketGetResult,
  type BucketListResult,
  type BucketObject,
  type BucketProvider,
  type ByteRange,
  type Conditional,
  type PutOptions,
  type UploadedPart,
} from './interface.js';
import { s3Call, s3Failure, status } from './s3-errors.js';
import {
  bytesOf,
  checkNoDotSegments,
  checkS3Key,
  objectOf,
  rangeHeader,
  type S3Context,
} from './s3-helpers.js';
import { deleteKeys, deletePrefix, listObjects } from './s3-list.js';
import { toS3Http, toS3Metadata } from './s3-metadata.js';
import { abortUpload, completeUpload, createUpload, writePart } from './s3-multipart.js';

/** Where the S3 provider stores objects. */
export interface S3BucketConfig {
  /** The one S3 bucket that holds every Bucket resource. */
  bucket: string;
  /** Prepended to every key, to share the S3 bucket with other applications (default none). */
  prefix?: string;
  /** For stores other than AWS: http(s)://host:port. */
  endpoint?: string;
  region?: string;
  /** Default: the AWS SDK's chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Path-style URLs (host/bucket/key), which MinIO and most self-hosted stores need. */
  forcePathStyle?: boolean;
  /** Create the S3 bucket in ensure() when it is missing (default true). */
  createBucket?: boolean;
  /** Bodies larger than this go up as multipart uploads of parts this size (default 8 MiB, at least 5). */
  partSize?: number;
}

type S3Module = typeof S3;

/** Creates the S3 client (lazily importing the AWS SDK) and returns the provider. */
export async function openS3Bucket(config: S3BucketConfig): Promise<S3Bucket> {
  const s3 = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const client = new s3.S3Client({
    region: config.region ?? 'us-east-1',
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials: config.credentials,
    // Checksums only where S3 requires them: many S3-compatible stores reject the SDK's default
    // streaming (aws-chunked) CRC32 trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A store that accepts connections but does not answer (paused, overloaded) fails the call
    // with a reason instead of holding it until the function's own timeout blames the function.
    requestHandler: { connectionTimeout: 5000, socketTimeout: 15_000 },
  });
  return new S3Bucket(s3, Upload, client, config);
}

/** The S3 provider; see the file comment. */
export class S3Bucket implements BucketProvider {
  readonly name = 's3';
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly where: string;
  private readonly ctx: S3Context;
  private bucketChecked = false;

  constructor(
    private readonly s3: S3Module,
    private readonly Upload: typeof UploadClass,
    private readonly client: S3.S3Client,
    private readonly config: S3BucketConfig,
  ) {
    this.prefix = config.prefix ?? '';
    this.partSize = Math.max(config.partSize ?? 8 * 1024 * 1024, BUCKET_LIMITS.minPartBytes);
    this.where = `S3 bucket "${config.bucket}"${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    this.ctx = { s3, client, bucket: config.bucket, failure: (err) => s3Failure(err, this.where) };
  }

  /** Makes sure the S3 bucket exists (creating it when allowed); resources need nothing more. */
  async ensure(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    if (this.bucketChecked) return;
    try {
      await this.client.send(new this.s3.HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      if (status(err) !== 404 || this.config.createBucket === false) throw this.ctx.failure(err);
      await s3Call(this.ctx.failure, () =>
        this.client.send(new this.s3.CreateBucketCommand({ Bucket: this.config.bucket })),
      );
    }
    this.bucketChecked = true;
  }

  async purge(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    await deletePrefix(this.ctx, this.base(ref));
  }

  async health(): Promise<Health> {
    try {
      const started = Date.now();
      await s3Call(this.ctx.failure, () =>
        this.client.send(new this.s3.HeadBucketCommand({ Bucket: this.config.bucket })),
      );
      return { ok: true, message: `${this.where}, ${Date.now() - started} ms` };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  async put(
    ref: ResourceRef,
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options: PutOptions = {},
  ): Promise<BucketObject | null> {
    checkS3Key(ref, key);
    const meta = checkPutOptions(options);
    const onlyIf = checkConditional(options.onlyIf);
    // S3-compatible stores differ in conditional writes: checked here, against a HEAD just before.
    if (onlyIf && !conditionHolds(onlyIf, await this.head(ref, key))) return null;
    const { Readable } = await import('node:stream');
    const upload = new this.Upload({
      client: this.client,
      partSize: this.partSize,
      queueSize: 2,
      params: {
        Bucket: this.config.bucket,
        Key: this.base(ref) + key,
        // Bytes go as they are (a single PutObject with a known length when small enough).
        Body: body instanceof Uint8Array ? body : Readable.from(bodyChunks(body)),
        Metadata: toS3Metadata(meta.customMetadata, meta.httpMetadata, options.checksums),
        ...toS3Http(meta.httpMetadata),
      },
    });
    await s3Call(this.ctx.failure, () => upload.done());
    // The stored object's own etag and time, as head() and list() will report them.
    const stored = await this.head(ref, key);
    if (!stored) throw this.ctx.failure(new Error(`"${key}" was uploaded but is not there`));
    return stored;
  }

  async get(
    ref: ResourceRef,
    key: string,
    options: { range?: ByteRange; onlyIf?: Conditional } = {},
  ): Promise<BucketGetResult | null> {
    checkS3Key(ref, key);
    checkRange(options.range);
    const onlyIf = checkConditional(options.onlyIf);
    if (onlyIf) {
      const current = await this.head(ref, key);
      if (!current) return null;
      if (!conditionHolds(onlyIf, current)) return { object: current, body: null };
    }
    let res: S3.GetObjectCommandOutput;
    try {
      res = await this.client.send(
        new this.s3.GetObjectCommand({
          Bucket: this.config.bucket,
          Key: this.base(ref) + key,
          Range: options.range ? rangeHeader(options.range) : undefined,
        }),
      );
    } catch (err) {
      if (status(err) === 404) return null;
      if (status(err) === 416) {
        throw new KylixError('ERR_RANGE_NOT_SATISFIABLE', `The range starts past the end of "${key}".`);
      }
      throw this.ctx.failure(err);
    }
    const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    const size = contentRange ? Number(contentRange[3]) : (res.ContentLength ?? 0);
    const object = objectOf(key, size, res);
    const body = bytesOf(res.Body as Readable | undefined);
    if (!options.range) return { object, body };
    const offset = contentRange ? Number(contentRange[1]) : 0;
    const length = contentRange ? Number(contentRange[2]) - offset + 1 : size;
    return { object, body, range: { offset, length } };
  }

  async head(ref: ResourceRef, key: string): Promise<BucketObject | null> {
    checkS3Key(ref, key);
    try {
      const res = await this.client.send(
        new this.s3.HeadObjectCommand({ Bucket: this.config.bucket, Key: this.base(ref) + key }),
      );
      return objectOf(key, res.ContentLength ?? 0, res);
    } catch (err) {
      if (status(err) === 404) return null;
      throw this.ctx.failure(err);
    }
  }

  async delete(ref: ResourceRef, keys: string | string[]): Promise<void> {
    const list = checkDeleteKeys(ref, keys);
    for (const key of list) checkNoDotSegments(key);
    await deleteKeys(
      this.ctx,
      list.map((k) => this.base(ref) + k),
    );
  }

  async list(
    ref: ResourceRef,
    options: Parameters<BucketProvider['list']>[1] = {},
  ): Promise<BucketListResult> {
    const checked = checkListOptions(ref, options);
    return listObjects(this.ctx, this.base(ref), checked, options.cursor, (key) => this.head(ref, key));
  }

  async createMultipartUpload(
    ref: ResourceRef,
    key: string,
    options: Pick<PutOptions, 'httpMetadata' | 'customMetadata'> = {},
  ): Promise<string> {
    checkS3Key(ref, key);
    const meta = checkPutOptions(options);
    return createUpload(this.ctx, this.base(ref) + key, meta);
  }

  async uploadPart(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
  ): Promise<UploadedPart> {
    checkS3Key(ref, key);
    checkPartNumber(partNumber);
    return writePart(this.ctx, key, this.base(ref) + key, uploadId, partNumber, body);
  }

  async completeMultipartUpload(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    given: UploadedPart[],
  ): Promise<BucketObject> {
    checkS3Key(ref, key);
    const parts = checkCompletedParts(given);
    await completeUpload(this.ctx, key, this.base(ref) + key, uploadId, parts);
    const stored = await this.head(ref, key);
    if (!stored) throw this.ctx.failure(new Error(`"${key}" was completed but is not there`));
    return stored;
  }

  async abortMultipartUpload(ref: ResourceRef, key: string, uploadId: string): Promise<void> {
    checkS3Key(ref, key);
    await abortUpload(this.ctx, this.base(ref) + key, uploadId);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private base(ref: ResourceRef): string {
    return `${this.prefix}${resourceIdentity(ref).path}/`;
  }
}
