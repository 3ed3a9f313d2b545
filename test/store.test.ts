import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { Store, WatchEvent } from '../src/control-plane/store/interface.js';
import { openPostgresStore } from '../src/control-plane/store/postgres.js';
import type { KylixError } from '../src/errors.js';
import type { KObject } from '../src/resources/meta.js';
import { ackedBeforeKill } from './helpers/crash.js';
import { eventually } from './helpers/eventually.js';
import { scratchSchema, TEST_POSTGRES_URL } from './helpers/postgres.js';
import { reachable } from './helpers/reachable.js';
import { tempDir } from './helpers/temp-dir.js';

function obj(name: string, value = 1): KObject {
  return {
    apiVersion: 'kylix.dev/v1',
    kind: 'KeyValue',
    metadata: {
      name,
      namespace: 'default',
      uid: name,
      resourceVersion: '',
      generation: 1,
      creationTimestamp: new Date().toISOString(),
    },
    spec: { value },
  };
}

const pgUrl = TEST_POSTGRES_URL;
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the PostgreSQL state store suite: ${pgDown}`);
const newSchema = () => scratchSchema();

/** What every state store must do, whatever holds the data. */
function storeConformance(name: string, open: () => Promise<Store>, skip?: string) {
  describe(`${name} state store`, { skip }, () => {
    it('stamps resource versions and refuses stale or duplicate writes', async () => {
      const store = await open();
      const a = await store.put(obj('a'), { mustNotExist: true });
      await assert.rejects(
        store.put(obj('a'), { mustNotExist: true }),
        (e: KylixError) => e.code === 'ERR_ALREADY_EXISTS',
      );
      const a2 = await store.put(
        { ...a, spec: { value: 2 } },
        { resourceVersion: a.metadata.resourceVersion },
      );
      assert.equal(Number(a2.metadata.resourceVersion), Number(a.metadata.resourceVersion) + 1);
      await assert.rejects(
        store.put({ ...a, spec: { value: 3 } }, { resourceVersion: a.metadata.resourceVersion }),
        (e: KylixError) => e.code === 'ERR_CONFLICT',
      );
      await assert.rejects(
        store.delete('KeyValue', 'default', 'nope'),
        (e: KylixError) => e.code === 'ERR_NOT_FOUND',
      );
      assert.equal(await store.currentVersion(), a2.metadata.resourceVersion);
      await store.close();
    });

    it('lists by kind and namespace, sorted, and keeps key order of the stored JSON', async () => {
      const store = await open();
      for (const n of ['b', 'a', 'c']) await store.put(obj(n));
      await store.put({ ...obj('z'), metadata: { ...obj('z').metadata, namespace: 'other' } });
      await store.put({ ...obj('a'), kind: 'Bucket' });
      assert.deepEqual(
        (await store.list('KeyValue')).map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['default/a', 'default/b', 'default/c', 'other/z'],
      );
      assert.deepEqual(
        (await store.list('KeyValue', 'other')).map((o) => o.metadata.name),
        ['z'],
      );
      const ordered = { ...obj('keys'), spec: { zeta: 1, alpha: { y: 1, b: 2 }, mid: [3, 1] } };
      await store.put(ordered);
      const back = await store.get('KeyValue', 'default', 'keys');
      assert.equal(JSON.stringify(back?.spec), JSON.stringify(ordered.spec));
      assert.deepEqual(Object.keys(back ?? {}), Object.keys(ordered));
      await store.close();
    });

    it('replays changes to a watcher from a resource version, then streams new ones', async () => {
      const store = await open();
      const first = await store.put(obj('a'));
      await store.put(obj('b'));
      const seen: WatchEvent[] = [];
      const w = store.watch(first.metadata.resourceVersion, (e) => seen.push(e));
      await store.delete('KeyValue', 'default', 'a');
      w.close();
      assert.deepEqual(
        seen.map((e) => `${e.type} ${e.object.metadata.name}`),
        ['ADDED b', 'DELETED a'],
      );
      await store.close();
    });
  });
}

storeConformance('embedded', () => openEmbeddedStore(tempDir('store')));
// Each test opens a new installation (schema).
storeConformance('postgres', () => openPostgresStore({ url: pgUrl, schema: newSchema() }), pgDown);

describe('embedded store', () => {
  it('numbers resource versions from 1', async () => {
    const store = await openEmbeddedStore(tempDir('store'));
    const a = await store.put(obj('a'), { mustNotExist: true });
    assert.equal(a.metadata.resourceVersion, '1');
    await store.close();
  });

  it('keeps every write across a reopen, and ignores a torn last line', async () => {
    const dir = tempDir('store');
    let store = await openEmbeddedStore(dir);
    for (let i = 0; i < 50; i++) await store.put(obj(`k${i}`, i));
    await store.delete('KeyValue', 'default', 'k3');
    await store.close();
    appendFileSync(join(dir, 'journal.log'), '{"rv":999,"op":"put","key":"KeyVal');
    store = await openEmbeddedStore(dir);
    const list = await store.list('KeyValue');
    assert.equal(list.length, 49);
    assert.equal((await store.get('KeyValue', 'default', 'k7'))?.spec?.value, 7);
    assert.equal(await store.currentVersion(), '51');
    await store.close();
  });

  it('answers Gone for a watch from a version it no longer remembers', async () => {
    const dir = tempDir('store');
    let store = await openEmbeddedStore(dir);
    await store.put(obj('a'));
    await store.put(obj('b'));
    await store.close();
    store = await openEmbeddedStore(dir);
    assert.throws(
      () => store.watch('1', () => {}),
      (e: KylixError) => e.code === 'ERR_GONE',
    );
    await store.close();
  });

  it('loses no acknowledged write when the process is killed with SIGKILL', async () => {
    const dir = tempDir('store');
    // A child writes as fast as it can and prints each acknowledged name; we kill it mid-stream.
    const script = `
      import { openEmbeddedStore } from ${JSON.stringify(new URL('../src/control-plane/store/embedded.ts', import.meta.url).href)};
      const store = await openEmbeddedStore(${JSON.stringify(dir)});
      for (let i = 0; ; i++) {
        const name = 'k' + i;
        const p = store.put({ apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name, namespace: 'default', uid: name, resourceVersion: '', generation: 1, creationTimestamp: '' }, spec: { i } });
        if (i % 4 === 3) await p; else p.then(() => process.stdout.write(name + '\\n'));
        if (i % 4 === 3) process.stdout.write(name + '\\n');
      }`;
    const acked = await ackedBeforeKill(script, 300);
    assert.ok(acked.length >= 300, `the child acknowledged only ${acked.length} writes`);
    const store = await openEmbeddedStore(dir);
    const names = new Set((await store.list('KeyValue')).map((o) => o.metadata.name));
    const lost = acked.filter((n) => !names.has(n));
    assert.deepEqual(lost, [], `acknowledged writes lost after kill -9: ${lost.slice(0, 5).join(', ')}`);
    await store.close();
  });
});

describe('postgres state store across nodes', { skip: pgDown }, () => {
  it('hands every node the same changes in the same order, with one version per write', async () => {
    const schema = newSchema();
    const a = await openPostgresStore({ url: pgUrl, schema });
    const b = await openPostgresStore({ url: pgUrl, schema });
    const seenA: string[] = [];
    const seenB: string[] = [];
    a.watch(undefined, (e) =>
      seenA.push(`${e.object.metadata.resourceVersion} ${e.type} ${e.object.metadata.name}`),
    );
    b.watch(undefined, (e) =>
      seenB.push(`${e.object.metadata.resourceVersion} ${e.type} ${e.object.metadata.name}`),
    );
    // Both nodes write at once; versions must come out unique and without gaps.
    const writes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).put(obj(`k${i}`, i))),
    );
    const versions = writes.map((w) => Number(w.metadata.resourceVersion)).sort((x, y) => x - y);
    assert.deepEqual(
      versions,
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    await b.delete('KeyValue', 'default', 'k0');
    await eventually(() => seenA.length === 41);
    await eventually(() => seenB.length === 41);
    assert.deepEqual(seenA, seenB);
    assert.equal(seenA.at(-1), '41 DELETED k0');
    assert.deepEqual(
      seenA.map((l) => Number(l.split(' ')[0])),
      Array.from({ length: 41 }, (_, i) => i + 1),
    );
    await a.close();
    await b.close();
  });

  it('lets exactly one of two nodes win a compare-and-set', async () => {
    const schema = newSchema();
    const a = await openPostgresStore({ url: pgUrl, schema });
    const b = await openPostgresStore({ url: pgUrl, schema });
    const base = await a.put(obj('lock'));
    for (let round = 0; round < 20; round++) {
      const current = (await a.get('KeyValue', 'default', 'lock'))!;
      const results = await Promise.allSettled(
        [a, b].map((s, i) =>
          s.put({ ...current, spec: { winner: i } }, { resourceVersion: current.metadata.resourceVersion }),
        ),
      );
      assert.equal(
        results.filter((r) => r.status === 'fulfilled').length,
        1,
        `round ${round}: ${JSON.stringify(results)}`,
      );
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal((failed.reason as KylixError).code, 'ERR_CONFLICT');
    }
    assert.equal(await b.currentVersion(), String(Number(base.metadata.resourceVersion) + 20));
    await a.close();
    await b.close();
  });

  it('keeps history across a restart and answers Gone beyond it', async () => {
    const schema = newSchema();
    let store = await openPostgresStore({ url: pgUrl, schema, history: 5 });
    for (let i = 0; i < 8; i++) await store.put(obj(`k${i}`, i));
    await store.close();
    store = await openPostgresStore({ url: pgUrl, schema, history: 5 });
    assert.equal((await store.list('KeyValue')).length, 8);
    const seen: string[] = [];
    store.watch('5', (e) => seen.push(e.object.metadata.name)).close();
    assert.deepEqual(seen, ['k5', 'k6', 'k7']);
    assert.throws(
      () => store.watch('1', () => {}),
      (e: KylixError) => e.code === 'ERR_GONE',
    );
    await store.close();
  });

  it('compacts: superseded secret payloads leave the event history', async () => {
    const schema = newSchema();
    const store = await openPostgresStore({ url: pgUrl, schema });
    const secret = { ...obj('s'), kind: 'Secret', spec: { sealed: { key: 'v1:old-ciphertext' } } };
    const first = await store.put(secret);
    await store.put(
      { ...first, spec: { sealed: { key: 'v1:new-ciphertext' } } },
      { resourceVersion: first.metadata.resourceVersion },
    );
    await store.put(obj('other'));
    await store.compact();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    const dump = await client.query<{ t: string }>(
      `SELECT e::text AS t FROM "${schema}".events e ORDER BY rv`,
    );
    await client.end();
    const text = dump.rows.map((r) => r.t).join('\n');
    assert.doesNotMatch(text, /old-ciphertext/);
    assert.match(text, /new-ciphertext/);
    assert.equal(dump.rows.length, 3, 'the history keeps every event');
    await store.close();
  });

  it('shares bundles between nodes', async () => {
    const schema = newSchema();
    const a = await openPostgresStore({ url: pgUrl, schema });
    const b = await openPostgresStore({ url: pgUrl, schema });
    const code = Buffer.from('export default { fetch() { return new Response("hi"); } };');
    await a.putBundle('sha256:abc', code);
    await a.putBundle('sha256:abc', code);
    assert.deepEqual(await b.getBundle('sha256:abc'), code);
    assert.equal(await b.getBundle('sha256:none'), undefined);
    await a.close();
    await b.close();
  });
});

describe('postgres state store errors', () => {
  it('says where it looked when the server does not answer', async () => {
    await assert.rejects(
      openPostgresStore({ url: 'postgres://kylix@127.0.0.1:1/kylix' }),
      (e: KylixError) =>
        e.code === 'ERR_BACKEND_UNAVAILABLE' &&
        /127\.0\.0\.1:1\/kylix/.test(e.message) &&
        /state URL/.test(e.message),
    );
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await assert.rejects(
      openPostgresStore({ url: pgUrl, schema: 'x"; DROP TABLE y' }),
      (e: KylixError) => e.code === 'ERR_MANIFEST_INVALID' && /schema/.test(e.message),
    );
  });
});
