/**
 * The informer on a fake store and a fake clock: it lists, then watches from the list's version;
 * its cache and handlers follow changes; on ERR_GONE it lists again at once and tells the handlers
 * what changed meanwhile; when the store cannot be reached or ends the watch, it tries again after
 * delays that grow and stop growing at the cap. Then the real embedded store, once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Informer, type ListWatchSource } from '../src/control-plane/informer.js';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { WatchEvent } from '../src/control-plane/store/interface.js';
import { KylixError } from '../src/errors.js';
import type { KObject } from '../src/resources/meta.js';
import { FakeClock, flush } from './helpers/fake-clock.js';
import { tempDir } from './helpers/temp-dir.js';

function obj(kind: string, name: string, rv: number, generation = 1): KObject {
  return {
    apiVersion: 'kylix.dev/v1',
    kind,
    metadata: {
      name,
      namespace: 'default',
      uid: name,
      resourceVersion: String(rv),
      generation,
      creationTimestamp: '2026-01-01T00:00:00Z',
    },
    spec: {},
  };
}

/** A store whose writes, failures and watch ends the test controls. */
class FakeStore implements ListWatchSource {
  version = 0;
  objects = new Map<string, KObject>();
  history: WatchEvent[] = [];
  watchers = new Set<{ listener: (e: WatchEvent) => void; onEnd?: (err: unknown) => void }>();
  calls = { list: 0, watch: 0 };
  /** Errors the next calls throw, in order. */
  failList: unknown[] = [];
  failWatch: unknown[] = [];
  /** Events older than this are forgotten (a watch from before it is Gone). */
  oldest = 0;

  async currentVersion() {
    return String(this.version);
  }
  async list(kind: string) {
    this.calls.list++;
    const err = this.failList.shift();
    if (err) throw err;
    return [...this.objects.values()].filter((o) => o.kind === kind);
  }
  watch(since: string, listener: (e: WatchEvent) => void, onEnd?: (err: unknown) => void) {
    this.calls.watch++;
    const err = this.failWatch.shift();
    if (err) throw err;
    if (Number(since) < this.oldest) throw new KylixError('ERR_GONE', `resourceVersion ${since} is too old`);
    for (const e of this.history) if (Number(e.object.metadata.resourceVersion) > Number(since)) listener(e);
    const w = { listener, onEnd };
    this.watchers.add(w);
    return { close: () => this.watchers.delete(w) };
  }
  /** A write: a new version, remembered and delivered. */
  write(type: WatchEvent['type'], kind: string, name: string, generation = 1, deliver = true) {
    const o = obj(kind, name, ++this.version, generation);
    if (type === 'DELETED') this.objects.delete(name);
    else this.objects.set(name, o);
    const e = { type, object: o };
    this.history.push(e);
    if (deliver) for (const w of this.watchers) w.listener(e);
    return o;
  }
  /** Ends every watch as a lost connection would. */
  breakWatches(err: unknown) {
    const ws = [...this.watchers];
    this.watchers.clear();
    for (const w of ws) w.onEnd?.(err);
  }
}

/** An informer on `store` recording what its handlers heard. */
function informerOn(store: FakeStore, clock: FakeClock) {
  const heard: string[] = [];
  const errors: { err: unknown; delay: number }[] = [];
  const informer = new Informer({
    source: store,
    kind: 'Function',
    clock,
    backoff: { initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 0.5 },
    onError: (err, delay) => errors.push({ err, delay }),
    handlers: {
      add: (o, initial) => heard.push(`add ${o.metadata.name}${initial ? ' (initial)' : ''}`),
      update: (p, o) =>
        heard.push(`update ${o.metadata.name} ${p.metadata.resourceVersion}→${o.metadata.resourceVersion}`),
      delete: (o) => heard.push(`delete ${o.metadata.name}`),
    },
  });
  return { informer, heard, errors };
}

describe('informer', () => {
  it('lists, then follows changes from the list version, keeping a cache', async () => {
    const store = new FakeStore();
    const clock = new FakeClock();
    store.write('ADDED', 'Function', 'a');
    store.write('ADDED', 'Secret', 's');
    const { informer, heard } = informerOn(store, clock);
    await informer.start();
    assert.ok(informer.hasSynced);
    assert.deepEqual(heard, ['add a (initial)']);
    store.write('ADDED', 'Function', 'b');
    store.write('MODIFIED', 'Function', 'a', 2);
    store.write('DELETED', 'Function', 'b');
    assert.deepEqual(heard.slice(1), ['add b', 'update a 1→4', 'delete b']);
    assert.equal(informer.get('default', 'a')?.metadata.generation, 2);
    assert.equal(informer.get('default', 'b'), undefined);
    assert.deepEqual(
      informer.list('default').map((o) => o.metadata.name),
      ['a'],
    );
    assert.equal(informer.resourceVersion, '5');
    assert.deepEqual(store.calls, { list: 1, watch: 1 });
    informer.stop();
    assert.equal(store.watchers.size, 0);
  });

  it('skips replayed events the list already holds', async () => {
    const store = new FakeStore();
    store.write('ADDED', 'Function', 'a');
    const { informer, heard } = informerOn(store, new FakeClock());
    // The list sees a write made after the version was taken; the watch replays it: one add, no update.
    const list = store.list.bind(store);
    store.list = async (kind) => {
      store.write('MODIFIED', 'Function', 'a', 2, false);
      return list(kind);
    };
    await informer.start();
    assert.deepEqual(heard, ['add a (initial)']);
    assert.equal(informer.get('default', 'a')?.metadata.resourceVersion, '2');
  });

  it('lists again at once on Gone, and tells the handlers what changed while it was away', async () => {
    const store = new FakeStore();
    const clock = new FakeClock();
    store.write('ADDED', 'Function', 'a');
    store.write('ADDED', 'Function', 'b');
    const { informer, heard, errors } = informerOn(store, clock);
    await informer.start();
    // The watch breaks; meanwhile a changes, b goes, c comes, and the store forgets that far back.
    store.breakWatches(new Error('connection lost'));
    store.write('MODIFIED', 'Function', 'a', 2, false);
    store.write('DELETED', 'Function', 'b', 1, false);
    store.write('ADDED', 'Function', 'c', 1, false);
    store.oldest = 4;
    // 1. a backoff after the broken watch, 2. the resumed watch is Gone, 3. a list at once.
    assert.equal(errors.length, 1);
    await clock.advance(errors[0]!.delay);
    assert.equal(errors.length, 2);
    assert.equal((errors[1]!.err as KylixError).code, 'ERR_GONE');
    assert.equal(errors[1]!.delay, 0, 'Gone lists again without waiting');
    await clock.advance(0);
    assert.equal(store.calls.list, 2);
    assert.deepEqual(heard.slice(2).sort(), ['add c', 'delete b', 'update a 1→3']);
    assert.deepEqual(
      informer.list().map((o) => o.metadata.name),
      ['a', 'c'],
    );
    // And it watches again: later changes arrive.
    store.write('MODIFIED', 'Function', 'c', 2);
    assert.equal(heard.at(-1), 'update c 5→6');
    informer.stop();
  });

  it('tries again after delays that grow, are jittered, and stop at the cap', async () => {
    const store = new FakeStore();
    const clock = new FakeClock();
    const down = new KylixError('ERR_BACKEND_UNAVAILABLE', 'The state store is down');
    store.failList = Array.from({ length: 7 }, () => down);
    const { informer, heard, errors } = informerOn(store, clock);
    store.write('ADDED', 'Function', 'a');
    let synced = false;
    void informer.start().then(() => {
      synced = true;
    });
    await flush();
    for (let i = 0; i < 7; i++) await clock.advance(errors.at(-1)!.delay);
    // 100, 200, 400, 800, then the 1000 ms cap; each 10% shorter (jitter 0.2 × random 0.5).
    assert.deepEqual(
      errors.map((e) => e.delay),
      [90, 180, 360, 720, 900, 900, 900],
    );
    assert.deepEqual(clock.delays, [90, 180, 360, 720, 900, 900, 900]);
    assert.ok(synced, 'the first list that works syncs the informer');
    assert.deepEqual(heard, ['add a (initial)']);
    // A success starts the delays over.
    store.breakWatches(new Error('lost'));
    assert.equal(errors.at(-1)!.delay, 90);
    await clock.advance(90);
    assert.equal(store.watchers.size, 1);
    informer.stop();
    assert.equal(clock.pending, 0);
  });

  it('a failed watch resumes from the last version seen, without listing', async () => {
    const store = new FakeStore();
    const clock = new FakeClock();
    store.write('ADDED', 'Function', 'a');
    const { informer, heard, errors } = informerOn(store, clock);
    await informer.start();
    store.breakWatches(new Error('lost'));
    store.write('MODIFIED', 'Function', 'a', 2, false);
    store.failWatch = [new Error('still down')];
    await clock.advance(errors[0]!.delay);
    assert.equal(errors[1]!.delay, 180, 'the second failure waits longer');
    await clock.advance(180);
    assert.equal(store.calls.list, 1);
    assert.deepEqual(heard, ['add a (initial)', 'update a 1→2']);
    informer.stop();
  });

  it('follows the embedded store', async () => {
    const store = await openEmbeddedStore(tempDir('informer'));
    try {
      await store.put(obj('Function', 'a', 0));
      const heard: string[] = [];
      const informer = new Informer({
        source: store,
        kind: 'Function',
        handlers: {
          add: (o) => heard.push(`add ${o.metadata.name}`),
          delete: (o) => heard.push(`delete ${o.metadata.name}`),
        },
      });
      await informer.start();
      await store.put(obj('Function', 'b', 0));
      await store.delete('Function', 'default', 'a');
      assert.deepEqual(heard, ['add a', 'add b', 'delete a']);
      assert.deepEqual(
        informer.list().map((o) => o.metadata.name),
        ['b'],
      );
      informer.stop();
    } finally {
      await store.close();
    }
  });
});
