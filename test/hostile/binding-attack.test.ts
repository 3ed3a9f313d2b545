/**
 * Attacks on the binding kinds (src/bindings/<kind>/kind.ts and their embedded providers) from a
 * tenant function: calls that make the supervisor hold memory without bound, or block its one
 * thread, or reach what the function does not own. Each test asserts the safe behaviour.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BindingBroker } from '../../src/bindings/broker.js';
import { EmbeddedDatabaseProvider } from '../../src/bindings/database/embedded.js';
import { eventually } from '../helpers/eventually.js';
import { apply, writeProject } from '../helpers/platform.js';
import { type Arena, arena, assertAllBlocked, PRELUDE } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 2 ** 20;

/**
 * The longest the supervisor's (this process's) thread was blocked while `during` runs: the
 * largest gap between ticks of a 5 ms timer, less the 5 ms.
 */
async function worstStall(during: Promise<unknown>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  try {
    await during;
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last - 5);
}

/** The supervisor's (this process's) largest external memory while `during` runs, above where it started. */
async function peakExternalGrowth(during: Promise<unknown>): Promise<number> {
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }, 5);
  try {
    await during;
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  return peak - base;
}

const bindings = (lines: Record<string, string>) =>
  `limits:\n  memoryMiB: 512\n  timeoutMs: 120000\n  cpuMs: 60000\nbindings:\n${Object.entries(lines)
    .map(([name, binding]) => `  ${name}:\n    ${binding}`)
    .join('\n')}`;

describe('hostile: binding calls that cost the supervisor without bound', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await apply(
      a.node,
      writeProject({
        'kylix.yaml': [
          'apiVersion: kylix.dev/v1\nkind: Database\nmetadata:\n  name: db\nspec: {}',
          'apiVersion: kylix.dev/v1\nkind: Bucket\nmetadata:\n  name: b\nspec: {}',
        ].join('\n---\n'),
      }),
    );
    await a.deploy({
      // SQL the supervisor scans (D1 placeholders, statement verb, SQLite hints) before any engine.
      sqlscan: {
        spec: bindings({ DB: 'database: db' }),
        code: `export default { async fetch(request, env) {
          const n = Number(new URL(request.url).searchParams.get('n'));
          const how = new URL(request.url).searchParams.get('how');
          const sql = 'select 1 ' + '$ '.repeat(n);
          const t = Date.now();
          let out;
          try {
            if (how === 'd1') await env.DB.prepare(sql).all();
            else await env.DB.query(sql);
            out = 'ran';
          } catch (e) { out = 'refused: ' + String(e.message).slice(0, 200); }
          return Response.json({ out, ms: Date.now() - t });
        } };`,
      },
      bucket: {
        spec: bindings({ B: 'bucket: b' }),
        code: `export default { async fetch(request, env) {
          const u = new URL(request.url);
          const what = u.pathname.split('/').pop();
          const key = u.searchParams.get('key') ?? 'big';
          const mb = Number(u.searchParams.get('mb') ?? 0);
          const n = Number(u.searchParams.get('n') ?? 1);
          const t = Date.now();
          if (what === 'put') {
            const body = new Uint8Array(mb * 1024 * 1024).fill(7);
            const options = {};
            if (u.searchParams.has('sums'))
              for (const [a, name] of [['SHA-1', 'sha1'], ['SHA-256', 'sha256'], ['SHA-384', 'sha384'], ['SHA-512', 'sha512']])
                options[name] = await crypto.subtle.digest(a, body);
            for (let i = 0; i < n; i++) await env.B.put(key, body, options);
            return Response.json({ out: 'stored', ms: Date.now() - t });
          }
          if (what === 'multipart') {
            // An object larger than one binding result may carry, from parts of 5 MiB.
            const part = new Uint8Array(5 * 1024 * 1024).fill(9);
            const upload = await env.B.createMultipartUpload(key);
            const parts = [];
            for (let i = 1; i * 5 <= mb; i++) parts.push(await upload.uploadPart(i, part));
            await upload.complete(parts);
            return Response.json({ out: 'stored', ms: Date.now() - t });
          }
          if (what === 'start') {
            const upload = await env.B.createMultipartUpload(key);
            await upload.uploadPart(1, 'mine');
            return Response.json({ out: upload.uploadId });
          }
          if (what === 'finish') {
            const upload = env.B.resumeMultipartUpload(key, u.searchParams.get('id'));
            const part = await upload.uploadPart(1, 'mine');
            await upload.complete([part]);
            return Response.json({ out: await (await env.B.get(key)).text() });
          }
          if (what === 'get') {
            const got = await Promise.all(Array.from({ length: n }, () =>
              env.B.get(key).then((o) => (o ? 'got ' + o.size : 'null'), (e) => 'refused: ' + (e.code ?? e.message))));
            return Response.json({ out: got, ms: Date.now() - t });
          }
          return new Response('?', { status: 404 });
        } };`,
      },
      // No binding at all: caches is every function's.
      cacher: {
        spec: 'limits:\n  memoryMiB: 256\n  timeoutMs: 120000\n  cpuMs: 60000',
        code: `export default { async fetch(request) {
          const u = new URL(request.url);
          const n = Number(u.searchParams.get('n'));
          const mb = Number(u.searchParams.get('mb'));
          const body = new Uint8Array(mb * 1024 * 1024).fill(3);
          for (let i = 0; i < n; i++)
            await caches.default.put('https://cache.example/' + i, new Response(body, { headers: { 'cache-control': 'public, max-age=31536000' } }));
          return new Response('cached ' + n);
        } };`,
      },
    });
  });
  after(async () => {
    await a.close();
  });

  for (const how of ['d1', 'query'])
    it(`SQL full of "$" (${how}) does not block the supervisor's thread`, async () => {
      // 75 000 "$ " is 150 KB of SQL; one call may send 1 MiB (the scan of which takes minutes).
      const call = a
        .get(`/sqlscan?how=${how}&n=75000`, { signal: AbortSignal.timeout(120_000) })
        .then((r) => r.json() as Promise<{ out: string; ms: number }>);
      const worst = await worstStall(call);
      const got = await call;
      if (process.env.KYLIX_HOSTILE_DEBUG) console.log(how, got, worst);
      assert.ok(
        worst < 500,
        `the supervisor's thread stalled for ${Math.round(worst)} ms (the call took ${got.ms} ms)`,
      );
      assert.ok(got.ms < 2000, `the call took ${got.ms} ms: ${got.out}`);
      await a.neighbourOk();
    });

  it('a get of an object larger than a binding result may carry is refused before the supervisor reads it', async () => {
    const made = await a.json<{ out: string }>('/bucket/multipart?key=huge&mb=70');
    assert.equal(made.out, 'stored');
    let got: { out: string[] } | undefined;
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const filesBefore = openFiles();
    const growth = await peakExternalGrowth(
      a.json<{ out: string[] }>('/bucket/get?key=huge&n=6').then((g) => {
        got = g;
      }),
    );
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(got, growth / MiB);
    // Nothing can be answered (70 MiB > the 64 MiB frame), yet each get read the whole object.
    for (const o of got!.out) assert.match(o, /^refused: ERR_BINDING_TOO_LARGE/);
    assert.ok(growth < 160 * MiB, `the supervisor held ${Math.round(growth / MiB)} MiB for 6 refused gets`);
    // A refused get closes what the provider opened for it (a file here; a connection on S3).
    await eventually(() => openFiles() <= filesBefore + 2, 3000).catch(() => undefined);
    assert.ok(
      openFiles() <= filesBefore + 2,
      `${openFiles() - filesBefore} files stayed open after 6 refused gets`,
    );
    await a.neighbourOk();
  });

  it('what concurrent bucket gets hold in the supervisor is bounded (as the arguments of calls are)', async () => {
    const made = await a.json<{ out: string }>('/bucket/put?key=forty&mb=40');
    assert.equal(made.out, 'stored');
    let got: { out: string[] } | undefined;
    const growth = await peakExternalGrowth(
      a.json<{ out: string[] }>('/bucket/get?key=forty&n=12').then((g) => {
        got = g;
      }),
    );
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(got, growth / MiB);
    // A channel's calls in flight may hold 256 MiB of arguments (instance-channel.ts); results are not counted.
    assert.ok(
      growth < 320 * MiB,
      `12 gets of a 40 MiB object made the supervisor hold ${Math.round(growth / MiB)} MiB at once`,
    );
    await a.neighbourOk();
  });

  it("a put's checksums are not computed in one block on the supervisor's thread", async () => {
    const call = a.json<{ out: string; ms: number }>('/bucket/put?key=summed&mb=60&n=3&sums=1');
    const worst = await worstStall(call);
    const got = await call;
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(got, worst);
    assert.equal(got.out, 'stored');
    assert.ok(worst < 250, `the supervisor's thread stalled for ${Math.round(worst)} ms on one tenant's put`);
    await a.neighbourOk();
  });

  it("a function without bindings cannot make the supervisor keep its cache's bytes without bound", async () => {
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const res = await a.get('/cacher?n=24&mb=8', { signal: AbortSignal.timeout(120_000) });
    assert.equal(await res.text(), 'cached 24');
    await new Promise((r) => setTimeout(r, 200));
    gc();
    const kept = process.memoryUsage().arrayBuffers - before;
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(kept / MiB);
    // 192 MiB put for a year by a function that declares nothing: a cache should evict.
    assert.ok(kept < 64 * MiB, `the supervisor keeps ${Math.round(kept / MiB)} MiB of one namespace's cache`);
    await a.neighbourOk();
  });

  it("another namespace's function cannot use an upload id of this namespace's bucket of the same name", async () => {
    const { out: id } = await a.json<{ out: string }>('/bucket/start?key=shared');
    await apply(
      a.node,
      writeProject({
        'kylix.yaml': [
          'apiVersion: kylix.dev/v1\nkind: Bucket\nmetadata:\n  name: b\n  namespace: thieves\nspec: {}',
          'apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: thief\n  namespace: thieves\nspec:\n  source: ./t.js\n  routes:\n    - path: /thief\n  bindings:\n    B:\n      bucket: b\n',
        ].join('\n---\n'),
        't.js': `${PRELUDE}
          export default { async fetch(request, env) {
            const id = new URL(request.url).searchParams.get('id');
            const upload = env.B.resumeMultipartUpload('shared', id);
            return Response.json({
              part: await attempt(() => upload.uploadPart(1, 'stolen').then((p) => p.etag)),
              complete: await attempt(() => upload.complete([{ partNumber: 1, etag: 'x' }])),
              traversal: await attempt(() => env.B.resumeMultipartUpload('shared', '../../default/b/uploads/' + id).uploadPart(1, 'x').then((p) => p.etag)),
            });
          } };`,
      }),
    );
    const got = await (await a.get(`/thief?id=${id}`)).json();
    if (process.env.KYLIX_HOSTILE_DEBUG) console.log(got);
    assertAllBlocked(got as Record<string, string>);
    // The upload is untouched: its owner completes it with its own part.
    assert.equal((await a.json<{ out: string }>(`/bucket/finish?key=shared&id=${id}`)).out, 'mine');
    await a.neighbourOk();
  });
});

describe('hostile: abandoned transactions', () => {
  const brokers = new Set<BindingBroker>();
  const providers = new Set<EmbeddedDatabaseProvider>();
  const call = BindingBroker.prototype.call;
  const begin = EmbeddedDatabaseProvider.prototype.begin;
  let a: Arena;
  before(async () => {
    // Only to find the node's broker and provider and look at what they hold.
    BindingBroker.prototype.call = function (this: BindingBroker, ...args: Parameters<typeof call>) {
      brokers.add(this);
      return call.apply(this, args);
    };
    EmbeddedDatabaseProvider.prototype.begin = function (
      this: EmbeddedDatabaseProvider,
      ...args: Parameters<typeof begin>
    ) {
      providers.add(this);
      return begin.apply(this, args);
    };
    a = await arena();
    const { ok } = await apply(
      a.node,
      writeProject({
        'kylix.yaml': [
          'apiVersion: kylix.dev/v1\nkind: Database\nmetadata:\n  name: txdb\nspec: {}',
          'apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: tx\nspec:\n  source: ./f.js\n  routes:\n    - path: /tx\n    - path: /tx/*\n  bindings:\n    DB:\n      database: txdb\n',
        ].join('\n---\n'),
        // Begins transactions whose callback never settles: each times out and is rolled back by
        // the database, and the function never commits nor rolls it back.
        'f.js': `export default { async fetch(request, env, ctx) {
          if (new URL(request.url).pathname.endsWith('/query')) return Response.json(await env.DB.query('select 1 as one'));
          for (let i = 0; i < 50; i++) ctx.waitUntil(env.DB.transaction(() => new Promise(() => {}), { timeoutMs: 5 }).catch(() => {}));
          return new Response('abandoned');
        } };`,
      }),
    );
    assert.ok(ok, 'the function did not deploy');
  });
  after(async () => {
    BindingBroker.prototype.call = call;
    EmbeddedDatabaseProvider.prototype.begin = begin;
    await a.close();
  });

  it('a transaction that timed out is forgotten by the broker and the provider', async () => {
    assert.equal(await (await a.get('/tx')).text(), 'abandoned');
    // The database serves one transaction at a time: once a query gets through, all 50 have begun.
    await eventually(async () => (await a.get('/tx/query')).status === 200, 10_000);
    const [broker] = brokers;
    const [provider] = providers;
    assert.ok(broker && provider);
    const held = () => {
      const handles = (broker as unknown as { handles: Map<string, string> }).handles.size;
      const txs = (provider as unknown as { txs: Map<string, unknown> }).txs.size;
      const engines = [
        ...(provider as unknown as { instances: Map<string, { idle: boolean }> }).instances.values(),
      ];
      return { handles, txs, busyEngines: engines.filter((e) => !e.idle).length };
    };
    // The provider forgets them as the database rolls them back; the broker the handles 5 s after
    // their time limit (a late call is told the transaction timed out until then).
    await eventually(() => held().txs === 0 && held().busyEngines === 0, 2000).catch(() => undefined);
    assert.deepEqual(
      { ...held(), handles: 0 },
      { handles: 0, txs: 0, busyEngines: 0 },
      'the provider still holds them',
    );
    await eventually(() => held().handles === 0, 10_000).catch(() => undefined);
    assert.deepEqual(
      held(),
      { handles: 0, txs: 0, busyEngines: 0 },
      'transactions that timed out are still held (and their engine can never be closed as idle)',
    );
  });
});
