/**
 * The S3 Bucket provider: any S3-compatible store (AWS S3, MinIO, Ceph, R2, Garage, …) through
 * @aws-sdk/client-s3, imported only when this provider is chosen.
 *
 * One S3 bucket serves every Bucket resource, each under its own key prefix
 * `<prefix><namespace>/<name>/`. Why not one S3 bucket per resource: bucket names are global
 * (on AWS) and capped per account, creating one needs more rights than object access, and most
 * stores cap their number; a prefix needs nothing but the one bucket, and purge is a prefix delete.
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
  checkObjectKey,
  checkPartNumber,
  checkPutOptions,
  checkRange,
  conditionHolds,
} from './checks.js';
import type {
  BucketListResult,
  BucketObject,
  BucketProvider,
  ByteRange,
  Conditional,
  PutOptions,
  UploadedPart,
} from './interface.js';
import {
  bytesOf,
  checkNoDotSegments,
  decodeListed,
  multipartCall,
  objectOf,
  rangeHeader,
  status,
} from './s3-helpers.js';
import { bareEtag, checksumsOf, toS3Http, toS3Metadata, uploadedAt, versionOf } from './s3-metadata.js';

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
  });
  return new S3Bucket(s3, Upload, client, config);
}

/** The S3 provider; see the file comment. */
export class S3Bucket implements BucketProvider {
  readonly name = 's3';
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly where: string;
  private bucketChecked = false;

  constructor(
    private readonly s3: S3Module,
    private readonly Upload: typeof UploadClass,
    private readonly client: S3.S3Client,
    private readonly config: S3BucketConfig,
  ) {
    this.prefix = config.prefix ?? '';
    this.partSize = Math.max(config.partSize ?? 8 * 1024 * 1024, 5 * 1024 * 1024);
    this.where = `S3 bucket "${config.bucket}"${config.endpoint ? ` at ${config.endpoint}` : ''}`;
  }

  /** Makes sure the S3 bucket exists (creating it when allowed); resources need nothing more. */
  async ensure(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    if (this.bucketChecked) return;
    try {
      await this.client.send(new this.s3.HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      if (status(err) !== 404 || this.config.createBucket === false) throw this.failure(err);
      await this.call(() =>
        this.client.send(new this.s3.CreateBucketCommand({ Bucket: this.config.bucket })),
      );
    }
    this.bucketChecked = true;
  }

  async purge(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    const base = this.base(ref);
    let token: string | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(
          new this.s3.ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: base,
            ContinuationToken: token,
          }),
        ),
      );
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
      await this.deleteFullKeys(keys);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async health(): Promise<Health> {
    try {
      const started = Date.now();
      await this.call(() => this.client.send(new this.s3.HeadBucketCommand({ Bucket: this.config.bucket })));
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
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
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
    await this.call(() => upload.done());
    // The stored object's own etag and time, as head() and list() will report them.
    const stored = await this.head(ref, key);
    if (!stored) throw this.failure(new Error(`"${key}" was uploaded but is not there`));
    return stored;
  }

  async get(
    ref: ResourceRef,
    key: string,
    options: { range?: ByteRange; onlyIf?: Conditional } = {},
  ): Promise<{
    object: BucketObject;
    body: AsyncIterable<Uint8Array> | null;
    range?: { offset: number; length: number };
  } | null> {
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
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
      throw this.failure(err);
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
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
    try {
      const res = await this.client.send(
        new this.s3.HeadObjectCommand({ Bucket: this.config.bucket, Key: this.base(ref) + key }),
      );
      return objectOf(key, res.ContentLength ?? 0, res);
    } catch (err) {
      if (status(err) === 404) return null;
      throw this.failure(err);
    }
  }

  async delete(ref: ResourceRef, keys: string | string[]): Promise<void> {
    const list = checkDeleteKeys(ref, keys);
    for (const key of list) checkNoDotSegments(key);
    await this.deleteFullKeys(list.map((k) => this.base(ref) + k));
  }

  async list(
    ref: ResourceRef,
    options: Parameters<BucketProvider['list']>[1] = {},
  ): Promise<BucketListResult> {
    const { prefix, delimiter, limit, includeHttp, includeCustom } = checkListOptions(ref, options);
    const base = this.base(ref);
    const page = await this.call(() =>
      this.client.send(
        new this.s3.ListObjectsV2Command({
          Bucket: this.config.bucket,
          Prefix: base + prefix,
          Delimiter: delimiter,
          MaxKeys: limit,
          ContinuationToken: options.cursor || undefined,
          // XML cannot carry every character a key may hold; S3 then URL-encodes the keys it lists.
          EncodingType: 'url',
        }),
      ),
    );
    const decoded = (s: string | undefined) =>
      page.EncodingType === 'url' ? decodeListed(s ?? '') : (s ?? '');
    let objects: BucketObject[] = (page.Contents ?? []).map((o) => {
      const etag = bareEtag(o.ETag);
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
    if (includeHttp || includeCustom)
      objects = await this.withMetadata(ref, objects, includeHttp, includeCustom);
    const result: BucketListResult = {
      objects,
      delimitedPrefixes: (page.CommonPrefixes ?? []).map((p) => decoded(p.Prefix).slice(base.length)),
      truncated: page.IsTruncated ?? false,
    };
    if (result.truncated && page.NextContinuationToken) result.cursor = page.NextContinuationToken;
    return result;
  }

  async createMultipartUpload(
    ref: ResourceRef,
    key: string,
    options: Pick<PutOptions, 'httpMetadata' | 'customMetadata'> = {},
  ): Promise<string> {
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
    const meta = checkPutOptions(options);
    const res = await this.call(() =>
      this.client.send(
        new this.s3.CreateMultipartUploadCommand({
          Bucket: this.config.bucket,
          Key: this.base(ref) + key,
          Metadata: toS3Metadata(meta.customMetadata, meta.httpMetadata),
          ...toS3Http(meta.httpMetadata),
        }),
      ),
    );
    if (!res.UploadId) throw this.failure(new Error('the store answered no upload id'));
    return res.UploadId;
  }

  async uploadPart(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
  ): Promise<UploadedPart> {
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
    checkPartNumber(partNumber);
    const res = await multipartCall(
      key,
      (e) => this.failure(e),
      () =>
        this.client.send(
          new this.s3.UploadPartCommand({
            Bucket: this.config.bucket,
            Key: this.base(ref) + key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
            ContentLength: body.byteLength,
          }),
        ),
    );
    return { partNumber, etag: bareEtag(res.ETag) };
  }

  async completeMultipartUpload(
    ref: ResourceRef,
    key: string,
    uploadId: string,
    given: UploadedPart[],
  ): Promise<BucketObject> {
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
    const parts = checkCompletedParts(given);
    await multipartCall(
      key,
      (e) => this.failure(e),
      () =>
        this.client.send(
          new this.s3.CompleteMultipartUploadCommand({
            Bucket: this.config.bucket,
            Key: this.base(ref) + key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
          }),
        ),
    );
    const stored = await this.head(ref, key);
    if (!stored) throw this.failure(new Error(`"${key}" was completed but is not there`));
    return stored;
  }

  async abortMultipartUpload(ref: ResourceRef, key: string, uploadId: string): Promise<void> {
    checkObjectKey(ref, key);
    checkNoDotSegments(key);
    try {
      await this.client.send(
        new this.s3.AbortMultipartUploadCommand({
          Bucket: this.config.bucket,
          Key: this.base(ref) + key,
          UploadId: uploadId,
        }),
      );
    } catch (err) {
      // An upload that is not there is already gone, as R2's abort() treats it.
      if (status(err) === 404) return;
      throw this.failure(err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private base(ref: ResourceRef): string {
    return `${this.prefix}${resourceIdentity(ref).path}/`;
  }

  /** S3 lists no metadata: fetch it with a HEAD per object, a few at a time, when the caller asked. */
  private async withMetadata(
    ref: ResourceRef,
    objects: BucketObject[],
    http: boolean,
    custom: boolean,
  ): Promise<BucketObject[]> {
    const out = [...objects];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < out.length; i = next++) {
        const full = await this.head(ref, out[i]!.key);
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

  /** Deletes full S3 keys, 1000 (S3's most per request) at a time. */
  private async deleteFullKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const res = await this.call(() =>
        this.client.send(
          new this.s3.DeleteObjectsCommand({
            Bucket: this.config.bucket,
            Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      const failed = res.Errors?.[0];
      if (failed)
        throw this.failure(new Error(`could not delete "${failed.Key}": ${failed.Code} ${failed.Message}`));
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.failure(err);
    }
  }

  /** An S3 failure as a KylixError that names the store and S3's own error code. */
  private failure(err: unknown): KylixError {
    if (err instanceof KylixError) return err;
    const e = err as { name?: string; message?: string; Code?: string };
    const code = e.Code ?? e.name ?? 'Error';
    const tooLarge = code === 'EntityTooLarge' || code === 'MetadataTooLarge';
    const wrapped = new KylixError(
      tooLarge ? 'ERR_BINDING_TOO_LARGE' : 'ERR_BACKEND_UNAVAILABLE',
      code === 'NoSuchBucket'
        ? `The ${this.where} does not exist; apply the Bucket again (the platform creates it) or create it.`
        : `The ${this.where} failed: ${code}: ${e.message ?? String(err)}`,
    );
    wrapped.cause = err;
    return wrapped;
  }
}
