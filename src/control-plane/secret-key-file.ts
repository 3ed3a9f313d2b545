/**
 * The embedded installation's secret keys: `<data>/keys/secrets.key`, mode 0600, one base64 key per
 * line, the current key first. A file from before rotation holds one key and no newline; it reads
 * the same way.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KylixError } from '../errors.js';
import { syncDir } from '../storage/journal-files.js';

/**
 * A key as configured (base64 of 32 bytes), or why it is not one. Standard and URL-safe base64
 * are accepted, padded or not.
 */
export function decodeKey(text: string): Buffer | string {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return 'must be base64 (make one with `openssl rand -base64 32`)';
  const key = Buffer.from(t, 'base64');
  if (key.length !== 32)
    return `must be 32 bytes in base64 (44 characters; make one with \`openssl rand -base64 32\`), but it decodes to ${key.length} bytes`;
  return key;
}

/** Creates the key file with `key` unless it exists (first start). */
export function createKeyFile(path: string, key: Buffer): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another start created it in the meantime: use that one.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** The keys in the file, current first; an error names the line that is not a key. */
export function readKeyFile(path: string): Buffer[] {
  const keys: Buffer[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    const key = decodeKey(line);
    if (typeof key === 'string')
      throw new KylixError('ERR_CONFIG_INVALID', `${path} line ${i + 1} is not a secret key: it ${key}.`, [
        { field: `${basename(path)}:${i + 1}`, message: key },
      ]);
    keys.push(key);
  }
  if (keys.length === 0)
    throw new KylixError(
      'ERR_CONFIG_INVALID',
      `${path} holds no secret key. Restore it from a backup; without its keys the stored secret values cannot be opened.`,
    );
  return keys;
}

/**
 * Replaces the file's keys, atomically: 1. write a temp file (0600) beside it and fsync it,
 * 2. rename it over the file, 3. fsync the folder. A crash leaves the old file or the new one.
 */
export async function writeKeyFile(path: string, keys: Buffer[]): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(tmp, 'wx', 0o600);
  try {
    await file.writeFile(keys.map((k) => `${k.toString('base64')}\n`).join(''));
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  await rename(tmp, path);
  await syncDir(dirname(path));
}
