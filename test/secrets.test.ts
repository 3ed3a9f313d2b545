/**
 * The keyring that seals Secret values: seal under the current key, open under any key of the
 * ring, clear errors for a missing key or a bad key entry, and the key file's formats.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadInstallation } from '../src/config/installation.js';
import { readKeyFile } from '../src/control-plane/secret-key-file.js';
import { keyIdOf, SecretBox, sealedKeyId } from '../src/control-plane/secrets.js';
import type { KylixError } from '../src/errors.js';
import { tempDir } from './helpers/temp-dir.js';

function keyFile(content?: string): string {
  const dir = tempDir('keys');
  const path = join(dir, 'keys', 'secrets.key');
  if (content !== undefined) {
    SecretBox.open(path); // makes the folder
    writeFileSync(path, content);
  }
  return path;
}
const b64 = (k: Buffer) => k.toString('base64');

describe('secret keyring', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);

  it('seals under the first key and opens values sealed under any key of the ring', () => {
    const sealedOld = SecretBox.fromKeys([oldKey]).seal('s3cret');
    const box = SecretBox.fromKeys([newKey, oldKey]);
    assert.equal(box.keyId, keyIdOf(newKey));
    assert.deepEqual(box.keyIds, [keyIdOf(newKey), keyIdOf(oldKey)]);
    assert.equal(box.open(sealedOld), 's3cret');
    const sealedNew = box.seal('s3cret');
    assert.equal(sealedKeyId(sealedNew), keyIdOf(newKey));
    assert.ok(box.isCurrent(sealedNew) && !box.isCurrent(sealedOld));
    assert.doesNotMatch(sealedNew, /s3cret/);
    assert.equal(SecretBox.fromKeys([newKey]).open(sealedNew), 's3cret');
  });

  it('names the missing key id, and what to do, for a value sealed under a key not in the ring', () => {
    const sealed = SecretBox.fromKeys([oldKey]).seal('s3cret');
    assert.throws(
      () => SecretBox.fromKeys([newKey]).open(sealed),
      (e: KylixError) => {
        assert.equal(e.code, 'ERR_SECRET_UNREADABLE');
        assert.match(e.message, new RegExp(`sealed under key ${keyIdOf(oldKey)}, which is not in`));
        assert.match(e.message, /Add that key back/);
        assert.doesNotMatch(e.message, /s3cret/);
        return true;
      },
    );
  });

  it('refuses an altered value', () => {
    const box = SecretBox.fromKeys([newKey]);
    const [v, id, iv, tag, ct] = box.seal('s3cret').split(':');
    const flipped = Buffer.from(ct!, 'base64');
    flipped[0]! ^= 1;
    assert.throws(
      () => box.open([v, id, iv, tag, flipped.toString('base64')].join(':')),
      (e: KylixError) => e.code === 'ERR_SECRET_UNREADABLE' && /altered/.test(e.message),
    );
  });

  it('creates the key file (0600) on first start, and reads an old single-key file unchanged', () => {
    const fresh = keyFile();
    const box = SecretBox.open(fresh);
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    assert.equal(box.keyIds.length, 1);
    assert.equal(SecretBox.open(fresh).keyId, box.keyId);

    // Before rotation the file held one key and no newline; values name the same key id.
    const sealed = SecretBox.fromKeys([oldKey]).seal('from before');
    const legacy = keyFile(b64(oldKey));
    const opened = SecretBox.open(legacy);
    assert.equal(opened.keyId, keyIdOf(oldKey));
    assert.equal(opened.open(sealed), 'from before');
    assert.equal(readFileSync(legacy, 'utf8'), b64(oldKey), 'the file is left as it was');
  });

  it('reads one key per line, current first', () => {
    const path = keyFile(`${b64(newKey)}\n\n${b64(oldKey)}\n`);
    assert.deepEqual(SecretBox.open(path).keyIds, [keyIdOf(newKey), keyIdOf(oldKey)]);
  });

  it('names the bad entry: a key file line, a configured key, a KYLIX_SECRET_KEYS entry', () => {
    const path = keyFile(`${b64(newKey)}\n${b64(randomBytes(16))}\n`);
    assert.throws(
      () => readKeyFile(path),
      (e: KylixError) => /line 2 is not a secret key/.test(e.message) && /16 bytes/.test(e.message),
    );
    assert.throws(
      () => SecretBox.load(keyFile(), [b64(newKey), 'not base64!']),
      (e: KylixError) => e.causes[0]?.field === 'secrets.keys[1]' && /base64/.test(e.message),
    );
    assert.throws(
      () => loadInstallation(undefined, { KYLIX_SECRET_KEYS: `${b64(newKey)}, ${b64(randomBytes(31))}` }),
      (e: KylixError) => {
        assert.deepEqual(
          e.causes.map((c) => c.field),
          ['KYLIX_SECRET_KEYS[1]'],
        );
        assert.match(e.causes[0]!.message, /32 bytes.*31 bytes/);
        return true;
      },
    );
    const dir = tempDir('conf');
    writeFileSync(join(dir, 'kylix.yaml'), `secrets:\n  keys: ["short", "${b64(newKey)}"]\n`);
    assert.throws(
      () => loadInstallation(join(dir, 'kylix.yaml'), {}),
      (e: KylixError) => e.causes.map((c) => c.field).join() === 'secrets.keys[0]',
    );
  });

  it('takes configured keys from the config file and KYLIX_SECRET_KEYS (which wins), and then ignores the key file', () => {
    const dir = tempDir('conf');
    writeFileSync(join(dir, 'kylix.yaml'), `secrets:\n  keys: ["${b64(oldKey)}"]\n`);
    assert.deepEqual(loadInstallation(join(dir, 'kylix.yaml'), {}).secrets?.keys, [b64(oldKey)]);
    const both = loadInstallation(join(dir, 'kylix.yaml'), {
      KYLIX_SECRET_KEYS: `${b64(newKey)},${b64(oldKey)}`,
    });
    assert.deepEqual(both.secrets?.keys, [b64(newKey), b64(oldKey)]);
    assert.equal(loadInstallation(undefined, {}).secrets, undefined);
    const unused = keyFile();
    const box = SecretBox.load(unused, both.secrets?.keys);
    assert.deepEqual(box.keyIds, [keyIdOf(newKey), keyIdOf(oldKey)]);
    assert.equal(existsSync(unused), false, 'no key file is made when keys are configured');
  });

  it('rotates a key file: new key first, old keys kept until dropped, atomically and 0600', async () => {
    const path = keyFile(b64(oldKey));
    const box = SecretBox.open(path);
    const sealedOld = box.seal('v');
    const { previousKeyId, currentKeyId } = await box.addCurrentKey();
    assert.equal(previousKeyId, keyIdOf(oldKey));
    assert.notEqual(currentKeyId, previousKeyId);
    assert.deepEqual(SecretBox.open(path).keyIds, [currentKeyId, previousKeyId]);
    assert.equal(box.open(sealedOld), 'v');
    assert.equal(sealedKeyId(box.seal('v')), currentKeyId);

    assert.deepEqual(await box.dropKeysExcept(new Set([previousKeyId])), [], 'a key in use stays');
    assert.deepEqual(await box.dropKeysExcept(new Set()), [previousKeyId]);
    assert.deepEqual(box.keyIds, [currentKeyId]);
    assert.deepEqual(SecretBox.open(path).keyIds, [currentKeyId]);
    assert.doesNotMatch(readFileSync(path, 'utf8'), new RegExp(b64(oldKey).replace(/[+/=]/g, '.')));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dirname(path)), ['secrets.key'], 'no temp file is left behind');
  });

  it('refuses to rotate configured keys, saying how to rotate them', async () => {
    const box = SecretBox.load(keyFile(), [b64(newKey)]);
    await assert.rejects(
      () => box.addCurrentKey(),
      (e: KylixError) =>
        e.code === 'ERR_BAD_REQUEST' &&
        /KYLIX_SECRET_KEYS/.test(e.message) &&
        /kylix secret reseal/.test(e.message),
    );
  });
});
