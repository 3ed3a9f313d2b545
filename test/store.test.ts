import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { WatchEvent } from '../src/control-plane/store/interface.js';
import type { KylixError } from '../src/errors.js';
import type { KObject } from '../src/resources/meta.js';
import { ackedBeforeKill } from './helpers/crash.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kylix-store-'));
  dirs.push(d);
  return d;
}

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

describe('embedded store', () => {
  it('stamps resource versions and refuses stale or duplicate writes', async () => {
    const store = await openEmbeddedStore(tempDir());
    const a = await store.put(obj('a'), { mustNotExist: true });
    assert.equal(a.metadata.resourceVersion, '1');
    await assert.rejects(
      store.put(obj('a'), { mustNotExist: true }),
      (e: KylixError) => e.code === 'ERR_ALREADY_EXISTS',
    );
    const a2 = await store.put({ ...a, spec: { value: 2 } }, { resourceVersion: '1' });
    assert.equal(a2.metadata.resourceVersion, '2');
    await assert.rejects(
      store.put({ ...a, spec: { value: 3 } }, { resourceVersion: '1' }),
      (e: KylixError) => e.code === 'ERR_CONFLICT',
    );
    await store.close();
  });

  it('keeps every write across a reopen, and ignores a torn last line', async () => {
    const dir = tempDir();
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

  it('replays changes to a watcher from a resource version, then streams new ones', async () => {
    const store = await openEmbeddedStore(tempDir());
    await store.put(obj('a'));
    await store.put(obj('b'));
    const seen: WatchEvent[] = [];
    const w = store.watch('1', (e) => seen.push(e));
    await store.delete('KeyValue', 'default', 'a');
    w.close();
    assert.deepEqual(
      seen.map((e) => `${e.type} ${e.object.metadata.name}`),
      ['ADDED b', 'DELETED a'],
    );
    await store.close();
  });

  it('answers Gone for a watch from a version it no longer remembers', async () => {
    const dir = tempDir();
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
    const dir = tempDir();
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
