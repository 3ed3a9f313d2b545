/**
 * `node:crypto` as Workers offers its common part: hashes and HMACs (md5, sha1, sha224, sha256,
 * sha384, sha512, ripemd160, synchronous, over @noble/hashes), PBKDF2, random bytes, UUIDs,
 * timingSafeEqual, and the Web Crypto object. Ciphers, key objects and signatures are not offered:
 * use crypto.subtle.
 */

import { Buffer } from 'node:buffer';
import { hmac } from '@noble/hashes/hmac.js';
import { md5, ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { pbkdf2 as noblePbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';

type Encoding = 'hex' | 'base64' | 'base64url' | 'latin1' | 'binary' | 'utf8' | 'utf-8';
type Input = string | ArrayBufferView | ArrayBuffer;
interface NobleHash {
  update(data: Uint8Array): NobleHash;
  digest(): Uint8Array;
  clone(): NobleHash;
}
type HashFn = { create(): NobleHash; outputLen: number; blockLen: number };

const HASHES: Record<string, HashFn> = {
  md5,
  sha1,
  'sha-1': sha1,
  sha224,
  sha256,
  'sha-256': sha256,
  sha384,
  'sha-384': sha384,
  sha512,
  'sha-512': sha512,
  ripemd160,
  rmd160: ripemd160,
} as unknown as Record<string, HashFn>;

function hashFn(algorithm: string): HashFn {
  const fn = HASHES[String(algorithm).toLowerCase()];
  if (!fn) throw new Error(`Digest method not supported: ${algorithm}`);
  return fn;
}

function bytes(data: Input, encoding?: Encoding): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function out(digest: Uint8Array, encoding?: Encoding): Buffer | string {
  const b = Buffer.from(digest);
  return encoding ? b.toString(encoding) : b;
}

/** A Hash (or Hmac) object: update() as often as needed, then digest() once. */
export class Hash {
  private done = false;
  constructor(private readonly state: NobleHash) {}
  update(data: Input, encoding?: Encoding): this {
    if (this.done) throw new Error('Digest already called');
    this.state.update(bytes(data, encoding));
    return this;
  }
  digest(encoding?: Encoding): Buffer | string {
    if (this.done) throw new Error('Digest already called');
    this.done = true;
    return out(this.state.digest(), encoding);
  }
  copy(): Hash {
    return new Hash(this.state.clone());
  }
}

/** createHash('sha256').update(data).digest('hex'). */
export function createHash(algorithm: string): Hash {
  return new Hash(hashFn(algorithm).create());
}

/** createHmac('sha256', key).update(data).digest('hex'). */
export function createHmac(algorithm: string, key: Input): Hash {
  return new Hash(hmac.create(hashFn(algorithm) as never, bytes(key)) as unknown as NobleHash);
}

/** One-shot hash (Node ≥ 21.7). */
export function hash(algorithm: string, data: Input, encoding: Encoding = 'hex'): Buffer | string {
  return createHash(algorithm).update(data).digest(encoding);
}

/** The hash names createHash accepts. */
export function getHashes(): string[] {
  return Object.keys(HASHES).filter((n) => !n.includes('-'));
}

/** PBKDF2, synchronously. */
export function pbkdf2Sync(password: Input, salt: Input, iterations: number, keylen: number, digest: string) {
  return Buffer.from(
    noblePbkdf2(hashFn(digest) as never, bytes(password), bytes(salt), { c: iterations, dkLen: keylen }),
  );
}

/** PBKDF2, with a callback. */
export function pbkdf2(
  password: Input,
  salt: Input,
  iterations: number,
  keylen: number,
  digest: string,
  callback: (err: Error | null, key?: Buffer) => void,
): void {
  queueMicrotask(() => {
    let key: Buffer;
    try {
      key = pbkdf2Sync(password, salt, iterations, keylen, digest);
    } catch (err) {
      return callback(err as Error);
    }
    callback(null, key);
  });
}

/** The Web Crypto object, and its parts. */
export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto.subtle;

/** Fills `array` with random values. */
export function getRandomValues<T extends ArrayBufferView>(array: T): T {
  return globalThis.crypto.getRandomValues(array as never) as T;
}

/** `size` random bytes, returned or (with a callback) passed on. */
export function randomBytes(size: number, callback?: (err: Error | null, buf: Buffer) => void): Buffer {
  const buf = Buffer.alloc(size);
  for (let at = 0; at < size; at += 65536)
    globalThis.crypto.getRandomValues(
      new Uint8Array(buf.buffer, buf.byteOffset + at, Math.min(65536, size - at)),
    );
  if (callback) queueMicrotask(() => callback(null, buf));
  return buf;
}

/** Fills `buf` with random bytes. */
export function randomFillSync<T extends ArrayBufferView>(buf: T, offset = 0, size?: number): T {
  const view = new Uint8Array(buf.buffer, buf.byteOffset + offset, size ?? buf.byteLength - offset);
  for (let at = 0; at < view.byteLength; at += 65536)
    globalThis.crypto.getRandomValues(view.subarray(at, Math.min(at + 65536, view.byteLength)));
  return buf;
}

/** A random integer in [min, max) (or [0, min) with one argument). */
export function randomInt(min: number, max?: number): number {
  const [lo, hi] = max === undefined ? [0, min] : [min, max];
  const range = hi - lo;
  if (!Number.isSafeInteger(range) || range <= 0) throw new RangeError('The range must be positive');
  const limit = 2 ** 48 - (2 ** 48 % range);
  for (;;) {
    const b = randomBytes(6);
    const n = b.readUIntBE(0, 6);
    if (n < limit) return lo + (n % range);
  }
}

/** A random v4 UUID. */
export function randomUUID(): string {
  return globalThis.crypto.randomUUID();
}

/** Compares two equal-length buffers in constant time. */
export function timingSafeEqual(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = bytes(a);
  const y = bytes(b);
  if (x.byteLength !== y.byteLength) throw new RangeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < x.byteLength; i++) diff |= (x[i] as number) ^ (y[i] as number);
  return diff === 0;
}

export default {
  Hash,
  createHash,
  createHmac,
  hash,
  getHashes,
  pbkdf2,
  pbkdf2Sync,
  webcrypto,
  subtle,
  getRandomValues,
  randomBytes,
  randomFillSync,
  randomInt,
  randomUUID,
  timingSafeEqual,
};
