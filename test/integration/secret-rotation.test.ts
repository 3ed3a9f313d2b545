/**
 * Key rotation for secret values at rest, through the real platform: rotate the embedded key file,
 * re-seal under configured keys (KYLIX_SECRET_KEYS), and the CLI commands. Functions keep seeing
 * the same values without restarting, and no old ciphertext, old key or plaintext stays behind.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadInstallation } from '../../src/config/installation.js';
import { keyIdOf } from '../../src/control-plane/secrets.js';
import type { KylixError } from '../../src/errors.js';
import type { ResealResult, RotationResult } from '../../src/resources/api-types.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));
const CANARY = 'canary-rot-5d1e8b-do-not-leak';

/** A Secret with two values and a function that answers its instance id and one of them. */
function app(): string {
  return writeProject({
    'secret.yaml': `apiVersion: kylix.dev/v1\nkind: Secret\nmetadata:\n  name: api\nspec:\n  stringData:\n    token: ${CANARY}\n    other: second-value\n`,
    'fn.yaml': functionManifest(
      'reader',
      './reader.ts',
      ['/reader'],
      '  bindings:\n    TOKEN: { secret: api, key: token }',
    ),
    'reader.ts':
      "const instance = Math.random().toString(36).slice(2);\nexport default { fetch(req, env) { return new Response(instance + ' ' + env.TOKEN); } };\n",
  });
}

/** The function's answer: which instance served it and the value it sees. */
async function read(node: TestNode): Promise<{ instance: string; value: string }> {
  const res = await fetch(node.url('/reader'));
  assert.equal(res.status, 200);
  const [instance = '', value = ''] = (await res.text()).split(' ');
  return { instance, value };
}

/** Every file under `dir`, as text. */
function filesUnder(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const path = join(d.parentPath, d.name);
      return { path, text: readFileSync(path, 'latin1') };
    });
}

/** Asserts that no state file names a sealed value under `keyId`, nor holds the canary. */
function assertStateClean(node: TestNode, oldKeyId: string, newKeyId: string): void {
  const state = filesUnder(join(node.dataDir, 'state'));
  assert.ok(
    state.some((f) => f.text.includes(`v1:${newKeyId}:`)),
    'the values are sealed under the new key',
  );
  for (const f of filesUnder(node.dataDir)) {
    assert.ok(!f.text.includes(`v1:${oldKeyId}:`), `${f.path} still holds a value sealed under ${oldKeyId}`);
    assert.ok(!f.text.includes(CANARY), `${f.path} holds the plaintext`);
  }
}

const keysIn = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);

describe('secret key rotation', () => {
  it('rotates the embedded key file: same values, no restart, old key and ciphertexts gone, restart still opens', async () => {
    let node = await startNode();
    try {
      await apply(node, app());
      const keyFile = join(node.dataDir, 'keys', 'secrets.key');
      const [oldKey = ''] = keysIn(keyFile);
      const oldKeyId = keyIdOf(Buffer.from(oldKey, 'base64'));
      const before = await read(node);
      assert.equal(before.value, CANARY);
      const generation = (await node.client.get('secrets', 'api')).metadata.generation;

      const { data } = await node.client.json<RotationResult>('POST', '/kylix/v1/secrets/rotate-key');
      assert.equal(data.previousKeyId, oldKeyId);
      assert.notEqual(data.currentKeyId, oldKeyId);
      assert.equal(data.resealed, 2);
      assert.deepEqual(data.keyIdsInUse, [data.currentKeyId]);
      assert.deepEqual(data.removedKeyIds, [oldKeyId]);
      assert.deepEqual(data.keyIds, [data.currentKeyId]);
      assert.deepEqual(data.unreadable, []);
      assert.doesNotMatch(JSON.stringify(data), new RegExp(CANARY));

      // The function sees the same value, from the same instance: the re-seal restarted nothing.
      assert.deepEqual(await read(node), before);
      const secret = await node.client.get('secrets', 'api');
      assert.equal(secret.metadata.generation, generation);
      const listed = await node.client.list('secrets');
      assert.doesNotMatch(JSON.stringify([secret, listed]), new RegExp(CANARY));

      // The key file holds the new key alone, still 0600; the state names no old ciphertext.
      const keys = keysIn(keyFile);
      assert.equal(keys.length, 1);
      assert.equal(keyIdOf(Buffer.from(keys[0]!, 'base64')), data.currentKeyId);
      assert.ok(!readFileSync(keyFile, 'utf8').includes(oldKey));
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assertStateClean(node, oldKeyId, data.currentKeyId);

      // A re-seal now has nothing to do.
      const again = await node.client.json<ResealResult>('POST', '/kylix/v1/secrets/reseal');
      assert.equal(again.data.resealed, 0);
      assert.deepEqual(again.data.keyIdsInUse, [data.currentKeyId]);

      // After a restart, everything opens with the rotated key file.
      await node.stop();
      node = await startNode({ dataDir: node.dataDir });
      assert.equal((await read(node)).value, CANARY);
      assert.deepEqual(await node.platform.registry.secretValues('default', 'api'), {
        token: CANARY,
        other: 'second-value',
      });

      // A changed value still restarts the function with it.
      const first = await read(node);
      await node.client.json(
        'PATCH',
        node.client.path('secrets', 'api'),
        {
          apiVersion: 'kylix.dev/v1',
          kind: 'Secret',
          metadata: { name: 'api' },
          spec: { stringData: { token: 'changed-value', other: 'second-value' } },
        },
        'application/apply-patch+yaml',
      );
      // Between the stop and the start, requests get 503 with Retry-After.
      let changed = first;
      await eventually(async () => {
        const res = await fetch(node.url('/reader'));
        if (res.status !== 200) return false;
        const [instance = '', value = ''] = (await res.text()).split(' ');
        changed = { instance, value };
        return value === 'changed-value';
      });
      assert.notEqual(changed.instance, first.instance);
    } finally {
      await node.destroy();
    }
  });

  it('opens values sealed under an older configured key (KYLIX_SECRET_KEYS="new,old"), and re-seals them under the new one', async () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    const [oldId, newId] = [oldKey, newKey].map((k) => keyIdOf(Buffer.from(k, 'base64'))) as [string, string];
    const withKeys = (keys: string) => loadInstallation(undefined, { KYLIX_SECRET_KEYS: keys });

    let node = await startNode({ installation: withKeys(oldKey) });
    const dataDir = node.dataDir;
    try {
      await apply(node, app());
      await node.stop();

      node = await startNode({ dataDir, installation: withKeys(`${newKey},${oldKey}`) });
      const before = await read(node);
      assert.equal(before.value, CANARY);
      const { data } = await node.client.json<ResealResult>('POST', '/kylix/v1/secrets/reseal');
      assert.equal(data.currentKeyId, newId);
      assert.equal(data.resealed, 2);
      assert.deepEqual(data.keyIdsInUse, [newId]);
      assert.deepEqual(await read(node), before, 'same value, same instance');
      assertStateClean(node, oldId, newId);
      assert.equal(
        existsSync(join(dataDir, 'keys', 'secrets.key')),
        false,
        'no key file with configured keys',
      );

      // Kylix cannot rotate configured keys itself; it says how.
      await assert.rejects(
        () => node.client.json('POST', '/kylix/v1/secrets/rotate-key'),
        (e: KylixError) =>
          e.code === 'ERR_BAD_REQUEST' && /KYLIX_SECRET_KEYS/.test(e.message) && /every node/.test(e.message),
      );
      await node.stop();

      // The old key can go now.
      node = await startNode({ dataDir, installation: withKeys(newKey) });
      assert.equal((await read(node)).value, CANARY);
      await node.stop();

      // A node without the new key says which key it lacks.
      node = await startNode({ dataDir, installation: withKeys(oldKey) });
      await assert.rejects(
        () => node.platform.registry.secretValues('default', 'api'),
        (e: KylixError) =>
          e.code === 'ERR_SECRET_UNREADABLE' && e.message.includes(`key ${newId}, which is not`),
      );
      const fn = await node.client.get('functions', 'reader');
      const ready = fn.status?.conditions?.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'False');
      assert.match(ready?.message ?? '', new RegExp(`key ${newId}`));
      assert.doesNotMatch(JSON.stringify(fn), new RegExp(CANARY));
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('kylix secret rotate-key and kylix secret reseal print the key ids and counts', async () => {
    const node = await startNode();
    const kylix = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [BIN, '--server', node.platform.apiUrl, ...args],
          { env: { ...process.env, KYLIX_CONFIG: '/nonexistent' } },
          (err, stdout, stderr) =>
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    try {
      const set = await kylix('secret', 'set', 'db', '--from-literal', `password=${CANARY}`);
      assert.equal(set.code, 0, set.stderr);
      const rotate = await kylix('secret', 'rotate-key');
      assert.equal(rotate.code, 0, rotate.stderr);
      const m = /^Rotated the secret key: ([0-9a-f]{8}) -> ([0-9a-f]{8})$/m.exec(rotate.stdout);
      assert.ok(m, rotate.stdout);
      assert.match(
        rotate.stdout,
        new RegExp(`^Re-sealed 1 value under key ${m[2]} \\(1 secret checked\\)\\.$`, 'm'),
      );
      assert.match(rotate.stdout, new RegExp(`^Removed from the key file: ${m[1]}$`, 'm'));
      const reseal = await kylix('secret', 'reseal');
      assert.equal(reseal.code, 0, reseal.stderr);
      assert.match(reseal.stdout, new RegExp(`^Re-sealed 0 values under key ${m[2]}`, 'm'));
      assert.match(reseal.stdout, new RegExp(`^Key ids in use: ${m[2]}$`, 'm'));
      for (const out of [set, rotate, reseal])
        assert.doesNotMatch(out.stdout + out.stderr, new RegExp(CANARY));
    } finally {
      await node.destroy();
    }
  });
});
