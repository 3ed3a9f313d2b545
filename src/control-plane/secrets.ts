/**
 * Secret values at rest: AES-256-GCM under a keyring, as Kubernetes' EncryptionConfiguration does
 * it: the first (current) key seals, every key in the ring can open. Each sealed value carries the
 * id of the key that sealed it ("v1:<keyId>:<iv>:<tag>:<ct>"), so keys can be rotated: put a new
 * key first, re-seal every value, then drop the keys no value uses any more.
 *
 * The keys come from the installation config (`secrets.keys` / KYLIX_SECRET_KEYS, for a fleet
 * whose nodes must share them) or else from the key file in the data folder (secret-key-file.ts).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { KylixError } from '../errors.js';
import { createKeyFile, decodeKey, readKeyFile, writeKeyFile } from './secret-key-file.js';

/** Where a keyring's keys come from; rotation differs between the two. */
export type KeySource = { kind: 'file'; path: string } | { kind: 'config' };

/** The id a sealed value records for its key: the start of the key's SHA-256 (never the key). */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The key id recorded in a sealed value, or undefined when it is not one. */
export function sealedKeyId(sealed: string): string | undefined {
  const [v, keyId] = sealed.split(':');
  return v === 'v1' && keyId ? keyId : undefined;
}

interface RingKey {
  id: string;
  key: Buffer;
}

/** Seals and opens secret values with a keyring; see the file comment. */
export class SecretBox {
  private ring: RingKey[];

  private constructor(
    keys: Buffer[],
    readonly source: KeySource,
  ) {
    this.ring = SecretBox.ringOf(keys);
  }

  /** A box over keys given in memory (first = current); for configured keys and tests. */
  static fromKeys(keys: Buffer[], source: KeySource = { kind: 'config' }): SecretBox {
    return new SecretBox(keys, source);
  }

  /**
   * The installation's box: the configured keys when there are any (the key file is then not
   * used), else the key file at `keyFile`, created (0600) with one new key on first start.
   */
  static load(keyFile: string, configured?: readonly string[]): SecretBox {
    if (configured && configured.length > 0) {
      const keys = configured.map((text, i) => {
        const key = decodeKey(text);
        if (typeof key === 'string')
          throw new KylixError('ERR_CONFIG_INVALID', `Secret key ${i + 1} of the configured keys ${key}.`, [
            { field: `secrets.keys[${i}]`, message: key },
          ]);
        return key;
      });
      return new SecretBox(keys, { kind: 'config' });
    }
    return SecretBox.open(keyFile);
  }

  /** The box of the key file at `path` (one base64 key per line, current first), created if missing. */
  static open(path: string): SecretBox {
    createKeyFile(path, randomBytes(32));
    return new SecretBox(readKeyFile(path), { kind: 'file', path });
  }

  /** The id of the current key, the one that seals. */
  get keyId(): string {
    return this.ring[0]!.id;
  }

  /** Every key id in the ring, current first. */
  get keyIds(): string[] {
    return this.ring.map((k) => k.id);
  }

  /** "v1:<keyId>:<iv>:<tag>:<ciphertext>", all base64 but the key id. */
  seal(plaintext: string): string {
    const { id, key } = this.ring[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      'v1',
      id,
      iv.toString('base64'),
      cipher.getAuthTag().toString('base64'),
      ct.toString('base64'),
    ].join(':');
  }

  /** The plaintext of a sealed value, under whichever key of the ring sealed it. */
  open(sealed: string): string {
    const [v, keyId, iv, tag, ct] = sealed.split(':');
    if (v !== 'v1' || !keyId || !iv || !tag || ct === undefined)
      throw new KylixError('ERR_SECRET_UNREADABLE', 'A stored secret value is not in the sealed format.');
    const entry = this.ring.find((k) => k.id === keyId);
    if (!entry) throw new KylixError('ERR_SECRET_UNREADABLE', this.missingKeyMessage(keyId));
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new KylixError(
        'ERR_SECRET_UNREADABLE',
        `A stored secret value sealed under key ${keyId} fails its integrity check: it was altered. Set the secret again.`,
      );
    }
  }

  /** True when `sealed` was sealed under the current key (a re-seal would not change it). */
  isCurrent(sealed: string): boolean {
    return sealedKeyId(sealed) === this.keyId;
  }

  /**
   * Key-file rotation, step 1: a new key goes first in the file (written atomically, the old keys
   * after it) and in the ring, so from now on it seals while the old keys still open.
   */
  async addCurrentKey(): Promise<{ previousKeyId: string; currentKeyId: string }> {
    const path = this.keyFilePath();
    const previousKeyId = this.keyId;
    const next = [randomBytes(32), ...this.ring.map((k) => k.key)];
    await writeKeyFile(path, next);
    this.ring = SecretBox.ringOf(next);
    return { previousKeyId, currentKeyId: this.keyId };
  }

  /**
   * Key-file rotation, last step: keeps the current key and the keys in `inUse`, drops the others
   * from the file and the ring; returns the ids dropped.
   */
  async dropKeysExcept(inUse: ReadonlySet<string>): Promise<string[]> {
    const path = this.keyFilePath();
    const keep = this.ring.filter((k, i) => i === 0 || inUse.has(k.id));
    const dropped = this.ring.filter((k) => !keep.includes(k)).map((k) => k.id);
    if (dropped.length === 0) return [];
    await writeKeyFile(
      path,
      keep.map((k) => k.key),
    );
    this.ring = keep;
    return dropped;
  }

  private keyFilePath(): string {
    if (this.source.kind === 'file') return this.source.path;
    throw new KylixError(
      'ERR_BAD_REQUEST',
      'The secret keys come from the installation config (secrets.keys or KYLIX_SECRET_KEYS), so Kylix cannot rotate them itself. To rotate: 1. make a key (`openssl rand -base64 32`) and add it after the current key on every node, then restart every node, so all of them can open it; 2. move it first on every node and restart them again (if you stop every node at once, steps 1 and 2 are one); 3. run `kylix secret reseal`; 4. once it reports only the new key in use, remove the old key from every node and restart them.',
    );
  }

  private missingKeyMessage(keyId: string): string {
    const where =
      this.source.kind === 'file'
        ? `the key file ${this.source.path}`
        : 'the configured keys (secrets.keys or KYLIX_SECRET_KEYS)';
    return `A stored secret value was sealed under key ${keyId}, which is not in this node's keyring (${this.keyIds.join(', ')}, from ${where}). Add that key back after the current one and restart, or set the secret again.`;
  }

  private static ringOf(keys: Buffer[]): RingKey[] {
    if (keys.length === 0) throw new KylixError('ERR_CONFIG_INVALID', 'The secret keyring holds no key.');
    const ring: RingKey[] = [];
    for (const key of keys) {
      const id = keyIdOf(key);
      const twin = ring.find((k) => k.id === id);
      // The same key listed twice (a copy-paste while rotating) is harmless: keep its first place.
      if (twin?.key.equals(key)) continue;
      if (twin)
        throw new KylixError(
          'ERR_CONFIG_INVALID',
          `Two different secret keys share the id ${id} (a one-in-four-billion chance). Replace the newer one with a fresh key.`,
        );
      ring.push({ id, key });
    }
    return ring;
  }
}
