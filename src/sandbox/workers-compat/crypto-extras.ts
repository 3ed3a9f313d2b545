/**
 * Workers' own additions to Web Crypto, which Node's lacks and Workers code calls:
 * `crypto.subtle.timingSafeEqual(a, b)` (webhook and bearer-token checks), MD5 in
 * `crypto.subtle.digest` (Content-MD5, Gravatar hashes, R2 checksums) and `crypto.DigestStream`.
 * Installed on the host's objects before the realm is hardened, so they are frozen with the rest;
 * the hashing is Node's own, reached from these closures only.
 */
import { createHash, timingSafeEqual as nodeTimingSafeEqual } from 'node:crypto';

const { apply } = Reflect;
const { defineProperty } = Object;

/** Web Crypto hash names (case-insensitive, as Workers takes them) to Node's. */
const NODE_HASH: Record<string, string> = {
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  MD5: 'md5',
};

/** Node's name of a digest algorithm given as a string or `{ name }`, undefined when unknown. */
function nodeHashOf(algorithm: unknown): string | undefined {
  const name = typeof algorithm === 'string' ? algorithm : (algorithm as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? NODE_HASH[name.toUpperCase()] : undefined;
}

/** The bytes of a BufferSource, without copying; a TypeError naming `what` for anything else. */
function bytesOf(data: unknown, what: string): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBufferView.`);
}

/** A digest as a fresh ArrayBuffer (Node's may share a pooled buffer). */
function arrayBufferOf(digest: Uint8Array): ArrayBuffer {
  return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer;
}

/** Workers' `crypto.DigestStream`: a WritableStream whose `digest` resolves to the hash of what was written. */
class DigestStream extends WritableStream<ArrayBuffer | ArrayBufferView> {
  /** The hash of everything written, once the stream is closed; rejects if it is aborted. */
  readonly digest: Promise<ArrayBuffer>;

  constructor(algorithm: string | { name: string }) {
    const name = nodeHashOf(algorithm);
    if (!name)
      throw new DOMException('Unrecognized or unimplemented digest algorithm requested', 'NotSupportedError');
    const hash = createHash(name);
    let settle: { resolve(v: ArrayBuffer): void; reject(e: unknown): void } | undefined;
    const digest = new Promise<ArrayBuffer>((resolve, reject) => {
      settle = { resolve, reject };
    });
    super({
      write(chunk) {
        hash.update(bytesOf(chunk, 'A DigestStream chunk'));
      },
      close() {
        settle?.resolve(arrayBufferOf(hash.digest()));
      },
      abort(reason) {
        settle?.reject(reason);
      },
    });
    // A digest nobody awaits must not end the instance when the stream is aborted.
    digest.catch(() => undefined);
    this.digest = digest;
  }
}

/** Adds timingSafeEqual and MD5 to SubtleCrypto and DigestStream to the global crypto. */
export function installCryptoExtras(): void {
  const subtle = SubtleCrypto.prototype;
  const digest = subtle.digest;
  defineProperty(subtle, 'digest', {
    value: function digestWithMd5(this: SubtleCrypto, algorithm: AlgorithmIdentifier, data: BufferSource) {
      if (nodeHashOf(algorithm) !== 'md5')
        return apply(digest, this, [algorithm, data]) as Promise<ArrayBuffer>;
      try {
        return Promise.resolve(arrayBufferOf(createHash('md5').update(bytesOf(data, 'The data')).digest()));
      } catch (err) {
        return Promise.reject(err);
      }
    },
    writable: true,
    configurable: true,
  });
  defineProperty(subtle, 'timingSafeEqual', {
    value: function timingSafeEqual(a: BufferSource, b: BufferSource): boolean {
      const left = bytesOf(a, 'The first argument');
      const right = bytesOf(b, 'The second argument');
      if (left.byteLength !== right.byteLength)
        throw new TypeError('Input buffers must have the same byte length.');
      return nodeTimingSafeEqual(left, right);
    },
    writable: true,
    configurable: true,
  });
  defineProperty(globalThis.crypto, 'DigestStream', {
    value: DigestStream,
    writable: true,
    configurable: true,
  });
}
