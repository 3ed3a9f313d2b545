import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openEmbeddedKeyValue } from '../../src/bindings/keyvalue/embedded.js';
import { createKeyValueProvider } from '../../src/bindings/keyvalue/index.js';
import type { KylixError } from '../../src/errors.js';
import { ackedBeforeKill } from '../helpers/crash.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';
import { keyValueConformance } from './keyvalue-conformance.js';

const embeddedDir = tempDir('kv');
keyValueConformance({
  name: 'embedded',
  // A tiny compaction threshold, so the suite also runs through snapshots.
  open: () => openEmbeddedKeyValue({ dataDir: embeddedDir, compactBytes: 64 * 1024 }),
  async reopen(provider) {
    await provider.close();
    return openEmbeddedKeyValue({ dataDir: embeddedDir, compactBytes: 64 * 1024 });
  },
});

const redisUrl = process.env.KYLIX_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisDown = await reachable(redisUrl);
if (redisDown)
  console.log(`# skipping the Redis KeyValue suite: Redis not reachable at ${redisUrl}: ${redisDown}`);
keyValueConformance({
  name: 'redis',
  skip: redisDown && `Redis not reachable at ${redisUrl}: ${redisDown}`,
  // A prefix per run, so the suite never meets another run's (or anyone's) keys.
  open: () =>
    createKeyValueProvider({ provider: 'redis', url: redisUrl, keyPrefix: `kylix-test-${randomUUID()}:` }),
});

describe('KeyValue providers', () => {
  it('refuses a bad config, naming every field', async () => {
    await assert.rejects(
      createKeyValueProvider({ provider: 'redis', url: 'localhost:6379' }),
      (e: KylixError) => e.code === 'ERR_CONFIG_INVALID' && e.causes.some((c) => c.field === 'keyValue.url'),
    );
    await assert.rejects(
      createKeyValueProvider({ provider: 'memcached' } as never),
      (e: KylixError) => e.code === 'ERR_CONFIG_INVALID' && e.causes[0]?.field === 'keyValue.provider',
    );
    await assert.rejects(
      createKeyValueProvider({ provider: 'embedded', dataDir: '/x', extra: 1 } as never),
      (e: KylixError) => e.code === 'ERR_CONFIG_INVALID' && e.causes[0]?.field === 'keyValue.extra',
    );
  });

  it('reports an unreachable Redis as a backend error that names it, without the password', async () => {
    const kv = await createKeyValueProvider({ provider: 'redis', url: 'redis://:s3cret@127.0.0.1:1' });
    const ref = { namespace: 'default', name: 'x' };
    await assert.rejects(
      kv.get(ref, 'k'),
      (e: KylixError) =>
        e.code === 'ERR_BACKEND_UNAVAILABLE' &&
        e.message.includes('127.0.0.1:1') &&
        !e.message.includes('s3cret'),
    );
    assert.equal((await kv.health()).ok, false);
    await kv.close();
  });

  it('Redis that hangs or goes down fails calls within seconds, with a reason, and recovers', {
    skip: !existsSync('/usr/bin/redis-server') && 'no redis-server binary',
  }, async () => {
    // A private server, so the shared one is never paused.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const start = () =>
      spawn(
        '/usr/bin/redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
    let server = start();
    try {
      const kv = await createKeyValueProvider({ provider: 'redis', url: `redis://127.0.0.1:${port}` });
      const ref = { namespace: 'default', name: 'hang' };
      for (let i = 0; ; i++) {
        try {
          await kv.put(ref, 'k', new Uint8Array([1]));
          break;
        } catch (err) {
          if (i > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const timed = async () => {
        const t = Date.now();
        const err = await kv.get(ref, 'k').then(
          () => undefined,
          (e: KylixError) => e,
        );
        return { err, ms: Date.now() - t };
      };
      server.kill('SIGSTOP');
      const hung = await timed();
      assert.equal(hung.err?.code, 'ERR_BACKEND_UNAVAILABLE');
      assert.match(String(hung.err?.message), /Redis at 127\.0\.0\.1/);
      assert.ok(hung.ms < 8000, `a hung Redis held the call ${hung.ms} ms`);
      server.kill('SIGCONT');
      server.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 3; i++) {
        const down = await timed();
        assert.equal(down.err?.code, 'ERR_BACKEND_UNAVAILABLE');
        assert.ok(down.ms < 3000, `a Redis that is down held the call ${down.ms} ms`);
      }
      server = start();
      const deadline = Date.now() + 10_000;
      let back = await timed();
      while (back.err && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        back = await timed();
      }
      assert.equal(back.err, undefined, 'the provider did not recover');
      await kv.close();
    } finally {
      server.kill('SIGCONT');
      server.kill('SIGKILL');
    }
  });

  it('embedded: loses no acknowledged write when the process is killed with SIGKILL', async () => {
    const dir = tempDir('kv');
    // A child puts as fast as it can and prints each acknowledged key; we kill it mid-stream.
    const script = `
      import { openEmbeddedKeyValue } from ${JSON.stringify(new URL('../../src/bindings/keyvalue/embedded.ts', import.meta.url).href)};
      const kv = await openEmbeddedKeyValue({ dataDir: ${JSON.stringify(dir)}, compactBytes: 32 * 1024 });
      const ref = { namespace: 'default', name: 'crash' };
      for (let i = 0; ; i++) {
        const key = 'k' + i;
        const p = kv.put(ref, key, new TextEncoder().encode('value ' + i), { metadata: { i } });
        if (i % 4 === 3) { await p; process.stdout.write(key + '\\n'); }
        else p.then(() => process.stdout.write(key + '\\n'));
      }`;
    const acked = await ackedBeforeKill(script, 2000);
    assert.ok(acked.length >= 2000, `the child acknowledged only ${acked.length} writes`);
    const kv = await openEmbeddedKeyValue({ dataDir: dir });
    const ref = { namespace: 'default', name: 'crash' };
    const lost: string[] = [];
    for (const key of acked) {
      const entry = await kv.get(ref, key);
      if (!entry || (entry.metadata as { i: number }).i !== Number(key.slice(1))) lost.push(key);
    }
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged writes lost after kill -9`);
    await kv.close();
  });

  it("embedded: a namespace's keys stay within its quota, and another namespace's puts go on", async () => {
    const dir = tempDir('kv-quota');
    const kv = await openEmbeddedKeyValue({ dataDir: dir, namespaceBytes: 1024 * 1024 });
    const a = { namespace: 'attacker', name: 'one' };
    const a2 = { namespace: 'attacker', name: 'two' };
    const b = { namespace: 'victim', name: 'one' };
    const big = new Uint8Array(400 * 1024);
    await kv.put(a, 'k1', big);
    await kv.put(a2, 'k2', big);
    // Two KeyValue namespaces of one namespace share its quota.
    await assert.rejects(
      kv.put(a, 'k3', big),
      (e: KylixError) => e.code === 'ERR_QUOTA_EXCEEDED' && /attacker/.test(e.message),
    );
    // Replacing a value with one no larger is allowed; the victim is not touched.
    await kv.put(a, 'k1', big);
    await kv.put(b, 'k1', big);
    await kv.put(b, 'k2', big);
    // Deleting makes room, and a reopened store counts the same.
    await kv.delete(a2, 'k2');
    await kv.put(a, 'k3', big);
    await kv.close();
    const again = await openEmbeddedKeyValue({ dataDir: dir, namespaceBytes: 1024 * 1024 });
    await assert.rejects(again.put(a2, 'k4', big), (e: KylixError) => e.code === 'ERR_QUOTA_EXCEEDED');
    await again.purge(a);
    await again.put(a2, 'k4', big);
    await again.close();
  });

  it('embedded: a put with a capacity evicts the least recently put entries, durably', async () => {
    const dir = tempDir('kv-capacity');
    const ref = { namespace: 'default', name: 'cache' };
    const value = new Uint8Array(1000);
    let kv = await openEmbeddedKeyValue({ dataDir: dir });
    for (const key of ['a', 'b', 'c']) await kv.put(ref, key, value, { capacity: 2500 });
    // Put again: "a" is now the most recent, so "b" goes first.
    await kv.put(ref, 'a', value, { capacity: 2500 });
    await kv.put(ref, 'd', value, { capacity: 2500 });
    const kept = async () => (await kv.list(ref)).keys.map((k) => k.name);
    assert.deepEqual(await kept(), ['a', 'd']);
    await kv.close();
    kv = await openEmbeddedKeyValue({ dataDir: dir });
    assert.deepEqual(await kept(), ['a', 'd'], 'an evicted entry came back after a restart');
    // A delete while an evicting put is on its way to disk is journaled after it, as memory saw them.
    await Promise.all([kv.put(ref, 'e', value, { capacity: 2500 }), kv.delete(ref, 'e')]);
    assert.deepEqual(await kept(), ['d']);
    await kv.close();
    kv = await openEmbeddedKeyValue({ dataDir: dir });
    assert.deepEqual(await kept(), ['d'], 'memory and the journal disagreed');
    await kv.close();
  });
});
