/**
 * Secret values at rest: AES-256-GCM under the installation key (a 32-byte file, mode 0600, in the
 * data folder). Each value carries the id of the key that sealed it, so keys can be rotated.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Seals and opens secret values. */
export class SecretBox {
  private constructor(
    private readonly key: Buffer,
    readonly keyId: string,
  ) {}

  /** Loads the key at `path`, creating it (0600) on first start. */
  static open(path: string): SecretBox {
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${path} does not hold a 32-byte base64 key.`);
    return new SecretBox(key, createHash('sha256').update(key).digest('hex').slice(0, 8));
  }

  /** "v1:<keyId>:<iv>:<tag>:<ciphertext>", all base64 but the key id. */
  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      'v1',
      this.keyId,
      iv.toString('base64'),
      cipher.getAuthTag().toString('base64'),
      ct.toString('base64'),
    ].join(':');
  }

  /** The plaintext of a sealed value; throws if it was sealed under another key or tampered with. */
  open(sealed: string): string {
    const [v, keyId, iv, tag, ct] = sealed.split(':');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed secret value');
    if (keyId !== this.keyId)
      throw new Error(`sealed under key ${keyId}, but the installation key is ${this.keyId}`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
  }
}
