/**
 * The S3 provider's errors: S3's failures as Kylix's, in one place. A failure of the store is
 * ERR_BACKEND_UNAVAILABLE naming the store and S3's own code, an object or metadata too large is
 * ERR_BINDING_TOO_LARGE, and a multipart call's unknown upload, small part or unknown part gets the
 * error the embedded provider answers with. Statuses a call expects (404 from a HEAD, 416 from a
 * ranged GET) are handled by that call.
 */
import { KylixError } from '../../errors.js';
import { noSuchUpload } from './checks.js';
import { BUCKET_LIMITS } from './interface.js';

const MIN_PART_MIB = BUCKET_LIMITS.minPartBytes / 2 ** 20;

/** The HTTP status of an S3 SDK error, if it carries one. */
export function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** An S3 failure as a KylixError that names the store (`where`) and S3's own error code. */
export function s3Failure(err: unknown, where: string): KylixError {
  if (err instanceof KylixError) return err;
  const e = err as { name?: string; message?: string; Code?: string };
  const code = e.Code ?? e.name ?? 'Error';
  const tooLarge = code === 'EntityTooLarge' || code === 'MetadataTooLarge';
  const wrapped = new KylixError(
    tooLarge ? 'ERR_BINDING_TOO_LARGE' : 'ERR_BACKEND_UNAVAILABLE',
    code === 'NoSuchBucket'
      ? `The ${where} does not exist; apply the Bucket again (the platform creates it) or create it.`
      : `The ${where} failed: ${code}: ${e.message ?? String(err)}`,
  );
  wrapped.cause = err;
  return wrapped;
}

/** An S3 call whose failure becomes `failure`'s KylixError. */
export async function s3Call<T>(failure: (err: unknown) => KylixError, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw failure(err);
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
        `A part of "${key}" is smaller than ${MIN_PART_MIB} MiB; every part but the last must be at least ${MIN_PART_MIB} MiB.`,
      );
    if (name === 'InvalidPart' || name === 'InvalidPartOrder')
      throw Object.assign(noSuchUpload(key), {
        message: `A part given to complete() was not uploaded with that etag: ${e.message}`,
      });
    throw failure(err);
  }
}
