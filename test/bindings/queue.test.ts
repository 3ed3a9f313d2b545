/**
 * The Queue conformance suite against every provider, plus what only the embedded queue promises:
 * an acknowledged send survives kill -9, and acked messages are compacted out of the journal.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openEmbeddedQueue } from '../../src/bindings/queue/embedded.js';
import { createQueueProvider } from '../../src/bindings/queue/index.js';
import { openNatsQueue } from '../../src/bindings/queue/nats.js';
import { KylixError } from '../../src/errors.js';
import { ackedBeforeKill } from '../helpers/crash.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';
import { isCode, queueConformance } from './queue-conformance.js';

const embeddedDir = tempDir('queue');
queueConformance({
  name: 'embedded',
  open: () => openEmbeddedQueue({ dataDir: embeddedDir }),
  async reopen(p) {
    await p.close();
    return openEmbeddedQueue({ dataDir: embeddedDir });
  },
});

const natsUrl = process.env.KYLIX_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const natsDown = await reachable(natsUrl);
if (natsDown) console.log(`# skipping the NATS queue suite: ${natsDown}`);
queueConformance({
  name: 'nats',
  skip: natsDown,
  open: () => openNatsQueue({ url: natsUrl }),
  async reopen(p) {
    await p.close();
    return openNatsQueue({ url: natsUrl });
  },
});

describe('embedded queue durability', () => {
  const ref = { namespace: 'crash', name: 'q' };

  it('keeps every acknowledged send after kill -9 of the process that sent it', async () => {
    const dir = tempDir('queue');
    const module = fileURLToPath(new URL('../../src/bindings/queue/embedded.ts', import.meta.url));
    // Eight producers at once, so acknowledgements come out of shared (group) commits.
    const script = `
      import { openEmbeddedQueue } from ${JSON.stringify(module)};
      const p = await openEmbeddedQueue({ dataDir: process.env.QDIR });
      const ref = { namespace: 'crash', name: 'q' };
      await p.ensure(ref);
      let next = 0;
      const producer = async () => {
        for (;;) {
          const i = next++;
          await p.send(ref, [{ body: new TextEncoder().encode(String(i)), contentType: 'text' }]);
          process.stdout.write(i + '\\n');
        }
      };
      for (let k = 0; k < 8; k++) void producer();
    `;
    const acked = new Set((await ackedBeforeKill(script, 1000, { QDIR: dir })).map(Number));
    assert.ok(acked.size >= 1000, `the child acknowledged ${acked.size} sends before it was killed`);

    const p = await openEmbeddedQueue({ dataDir: dir });
    const present = new Set<number>();
    for (;;) {
      const got = await p.receive(ref, { max: 500, leaseMs: 30_000, waitMs: 0 });
      if (got.length === 0) break;
      for (const d of got) present.add(Number(new TextDecoder().decode(d.body)));
    }
    await p.close();
    const lost = [...acked].filter((i) => !present.has(i));
    assert.deepEqual(lost, [], 'acknowledged messages lost');
  });

  it('compacts acked messages out of the journal, and the compacted journal reopens', async () => {
    const dir = tempDir('queue');
    let p = await openEmbeddedQueue({ dataDir: dir, compactMinBytes: 64 * 1024 });
    await p.ensure(ref);
    const body = new Uint8Array(200).fill(65);
    for (let round = 0; round < 20; round++) {
      await p.send(
        ref,
        Array.from({ length: 100 }, () => ({ body, contentType: 'bytes' as const })),
      );
      const got = await p.receive(ref, { max: 100, leaseMs: 30_000, waitMs: 0 });
      await p.ack(
        ref,
        got.map((d) => d.leaseId),
      );
    }
    await p.send(ref, [{ body: new TextEncoder().encode('survivor'), contentType: 'text' }]);
    // 2000 messages of ~300 journal bytes each were written; what is left is small.
    assert.ok(p.journalBytes < 200 * 1024, `journal is ${p.journalBytes} bytes`);
    await p.close();
    p = await openEmbeddedQueue({ dataDir: dir, compactMinBytes: 64 * 1024 });
    const got = await p.receive(ref, { max: 10, leaseMs: 30_000, waitMs: 0 });
    assert.deepEqual(
      got.map((d) => new TextDecoder().decode(d.body)),
      ['survivor'],
    );
    await p.close();
  });

  it('never hands out the id of an acked message again, even after compaction and a restart', async () => {
    const dir = tempDir('queue');
    let p = await openEmbeddedQueue({ dataDir: dir, compactMinBytes: 4096 });
    await p.ensure(ref);
    const used = new Set<string>();
    // One message at a time, until an ack's write compacts the journal while the queue is empty.
    for (let i = 0; ; i++) {
      assert.ok(i < 1000, 'no ack compacted the journal');
      await p.send(ref, [{ body: new TextEncoder().encode(String(i)), contentType: 'text' }]);
      const got = await p.receive(ref, { max: 1, leaseMs: 30_000, waitMs: 0 });
      for (const d of got) used.add(d.id);
      const before = p.journalBytes;
      await p.ack(
        ref,
        got.map((d) => d.leaseId),
      );
      if (p.journalBytes < before) break;
    }
    await p.close();
    p = await openEmbeddedQueue({ dataDir: dir, compactMinBytes: 4096 });
    await p.send(ref, [{ body: new TextEncoder().encode('new'), contentType: 'text' }]);
    const [fresh] = await p.receive(ref, { max: 1, leaseMs: 30_000, waitMs: 0 });
    await p.close();
    assert.ok(fresh && !used.has(fresh.id), `the new message got id ${fresh?.id}, an acked message's id`);
  });

  it('compacts a journal that is reopened before it doubles, so restarts do not let it grow without bound', async () => {
    const dir = tempDir('queue');
    const body = new Uint8Array(200).fill(66);
    let bytes = 0;
    for (let start = 0; start < 12; start++) {
      const p = await openEmbeddedQueue({ dataDir: dir, compactMinBytes: 64 * 1024 });
      await p.ensure(ref);
      await p.send(
        ref,
        Array.from({ length: 50 }, () => ({ body, contentType: 'bytes' as const })),
      );
      const got = await p.receive(ref, { max: 50, leaseMs: 30_000, waitMs: 0 });
      await p.ack(
        ref,
        got.map((d) => d.leaseId),
      );
      bytes = p.journalBytes;
      await p.close();
    }
    // Each start writes ~21 KiB of records, all acked: ~250 KiB in all, of which nothing is live.
    assert.ok(bytes <= 96 * 1024, `the journal holds ${bytes} bytes after 12 starts`);
  });
});

describe('embedded queue quota', () => {
  it("keeps a namespace's messages within its quota, and another namespace's sends go on", async () => {
    const dir = tempDir('queue-quota');
    const open = () => openEmbeddedQueue({ dataDir: dir, namespaceBytes: 1024 * 1024 });
    const q = await open();
    const a = { namespace: 'attacker', name: 'one' };
    const a2 = { namespace: 'attacker', name: 'two' };
    const b = { namespace: 'victim', name: 'one' };
    for (const ref of [a, a2, b]) await q.ensure(ref);
    const big = { body: new Uint8Array(300 * 1024), contentType: 'bytes' as const };
    await q.send(a, [big, big]);
    await q.send(a2, [big]);
    // Two queues of one namespace share its quota; a refused batch stores none of its messages.
    await assert.rejects(
      q.send(a2, [big]),
      (e: KylixError) => e.code === 'ERR_QUOTA_EXCEEDED' && /attacker/.test(e.message),
    );
    assert.deepEqual(await q.stats(a2), { ready: 1, inFlight: 0, delayed: 0 });
    await q.send(b, [big, big, big]);
    // Acking makes room, and a reopened provider counts what its journal holds the same way.
    const [first] = await q.receive(a, { max: 1, leaseMs: 30_000, waitMs: 0 });
    await q.ack(a, [first!.leaseId]);
    await q.send(a2, [big]);
    await q.close();
    const again = await open();
    await assert.rejects(again.send(a, [big]), (e: KylixError) => e.code === 'ERR_QUOTA_EXCEEDED');
    // Purging a queue gives its messages' room back.
    await again.purge(a2);
    await again.send(a, [big, big]);
    await again.close();
  });
});

describe('queue provider config', () => {
  it('rejects a bad config with every field named', async () => {
    await assert.rejects(createQueueProvider({ provider: 'nats', url: 'http://x', replica: 3 }), (err) => {
      assert.ok(err instanceof KylixError && err.code === 'ERR_CONFIG_INVALID');
      assert.deepEqual(err.causes.map((c) => c.field).sort(), ['queue.replica', 'queue.url']);
      return true;
    });
    await assert.rejects(createQueueProvider({ provider: 'kafka' }), isCode('ERR_CONFIG_INVALID'));
    await assert.rejects(createQueueProvider({ provider: 'embedded' }), isCode('ERR_CONFIG_INVALID'));
  });

  it('opens the embedded provider, and says clearly when a NATS server cannot be reached', async () => {
    const p = await createQueueProvider({ provider: 'embedded', dataDir: tempDir('queue') });
    assert.equal(p.name, 'embedded');
    assert.equal((await p.health()).ok, true);
    await p.close();
    await assert.rejects(
      createQueueProvider({ provider: 'nats', url: 'nats://127.0.0.1:1' }),
      isCode('ERR_BACKEND_UNAVAILABLE'),
    );
  });

  it('NATS health says whether the server fsyncs each write', { skip: natsDown }, async () => {
    const p = await createQueueProvider({ provider: 'nats', url: natsUrl });
    const h = await p.health();
    await p.close();
    assert.equal(h.ok, true, h.message);
    assert.match(h.message, /fsync/);
  });
});
