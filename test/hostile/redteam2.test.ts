/**
 * Red team, second round (issue 9): attacks on the boundaries the first rounds did not try. Each test
 * is an attack asserting the safe outcome; the report of the branch says which ones found real holes.
 *
 * - Binding arguments cheap to send and ruinous to walk (a sparse array of length 2^32-1).
 * - Error messages of tens of megabytes from tenant code, into the log and the Function's status.
 * - A sandbox process that is compromised (its host code replaced, as if tenant code had escaped
 *   the realm) and lies on its control channel with values the supervisor cannot even turn into
 *   strings, with log records whose other fields are huge, or with messages that announce a
 *   gigabyte, are not JSON, or are not control frames at all.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Isolation } from '../../src/runtime/isolation/isolation.js';
import { RevisionProcess } from '../../src/runtime/revision-process.js';
import { CONTROL_PEER_JS, compromisedRuntime } from '../helpers/compromised-sandbox.js';
import { eventually } from '../helpers/eventually.js';
import { apply, writeProject } from '../helpers/platform.js';
import { type Arena, arena } from './harness.js';

const BUBBLEWRAP = ['auto', 'off'] as const;

/**
 * A compromised sandbox process: what runs in place of sandbox/host.ts. It speaks the control
 * protocol, but what it says depends on its namespace (the one thing its environment tells it).
 */
const LIAR = `
const ns = process.env.KYLIX_NAMESPACE;
// An object that String(), Number() and template literals cannot turn into a primitive: they throw.
const evil = { toString: 0, valueOf: 0 };
${CONTROL_PEER_JS}
const raw = (type, payload) => ctl.write(frame(type, payload));
ctl.on('close', () => process.exit(0));
if (ns === 'lie-huge') {
  // A message announcing 1 GiB, then its bytes a little at a time, for as long as it is let.
  ctl.write(header(2 ** 30, 30));
  const more = () => ctl.write(Buffer.alloc(64 * 1024, 32), () => setTimeout(more, 1));
  more();
}
if (ns === 'lie-garbage') raw(30, Buffer.from('{"type": "hello", not json'));
if (ns === 'lie-type') raw(1, Buffer.from('{}'));
if (ns === 'lie-stderr') {
  // 20 MB of forged platform lines on stderr, then gone.
  const chunk = 'kylix: forged platform line\\n'.repeat(40000);
  let left = 20;
  const more = () => { if (left-- > 0) process.stderr.write(chunk, more); else process.exit(0); };
  more();
}
onMessage((m) => {
  if (!m || m.type !== 'start') return;
  const id = m.instance.id;
  const ready = () => send({ type: 'ready', id, startupMs: 1 });
  if (ns === 'lie-ready') send({ type: 'ready', id, startupMs: evil });
  else if (ns === 'lie-failed') send({ type: 'failed', id, message: evil });
  else if (ns === 'lie-limit') { ready(); setTimeout(() => send({ type: 'limit', id, code: 'ERR_CPU_LIMIT', message: evil }), 50); }
  else if (ns === 'lie-exited') { ready(); setTimeout(() => send({ type: 'exited', id, code: evil, message: evil }), 50); }
  else if (ns === 'lie-log') {
    ready();
    // Fields far longer than any honest record's, in messages the channel still takes (256 KiB).
    const big = 'r'.repeat(100 * 1024);
    for (let i = 0; i < 8; i++) send({ type: 'log', id, record: { level: 'log', message: 'forged', requestId: big, time: big } });
  }
});
send({ type: 'hello', pid: process.pid, nodeVersion: process.version });
setInterval(() => {}, 1 << 30);
`;

/**
 * A Node "runtime" (KYLIX_SANDBOX_NODE) that runs the real sandbox host for every namespace but the
 * lying ones, where it runs LIAR instead.
 */
const liarRuntime = () => compromisedRuntime('lie-*', LIAR);

const fn = (namespace: string, name: string) =>
  `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  source: ./f.js\n  routes:\n    - path: /${namespace}\n`;

for (const bubblewrap of BUBBLEWRAP)
  describe(`red team 2: a compromised sandbox process lies on its control channel (bubblewrap ${bubblewrap})`, () => {
    let a: Arena;
    // What the supervisor failed to handle: in `kylix server` each of these would end the node.
    const uncaught: Error[] = [];
    const record = (err: Error) => uncaught.push(err);
    before(async () => {
      process.on('uncaughtException', record);
      a = await arena({ isolation: { bubblewrap, nodePath: liarRuntime() } });
    });
    after(async () => {
      process.off('uncaughtException', record);
      await a.close();
    });

    const deploy = (namespace: string) =>
      apply(
        a.node,
        writeProject({
          'kylix.yaml': fn(namespace, 'victim'),
          'f.js': "export default { fetch() { return new Response('x'); } };",
        }),
      ).catch((err: Error) => err);

    for (const lie of ['lie-ready', 'lie-failed', 'lie-limit', 'lie-exited'])
      it(`${lie}: a value no string can be made of ends that process, not the supervisor`, async () => {
        const got = await deploy(lie);
        if (process.env.KYLIX_HOSTILE_DEBUG) console.log(lie, got);
        // The lie arrives after ready for limit and exited: give it the time to.
        if (lie === 'lie-limit' || lie === 'lie-exited') await a.get(`/${lie}`).then((r) => r.text());
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(
          uncaught.map((e) => e.message),
          [],
        );
        await a.neighbourOk();
        assert.equal((await a.node.client.raw('GET', '/version')).status, 200);
      });

    for (const lie of ['lie-huge', 'lie-garbage', 'lie-type'])
      it(`${lie}: a control message too big, not JSON or not a control frame ends that process at once`, async () => {
        const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
        const t = performance.now();
        await deploy(lie);
        // Its instance never starts: the process is ended on the message, so the route answers an error.
        const res = await a.get(`/${lie}`, { signal: AbortSignal.timeout(15_000) });
        await res.text();
        const ms = performance.now() - t;
        assert.ok(res.status >= 500, `${lie} answered ${res.status}`);
        // Refused on the header, not after the supervisor read (and held) a gigabyte.
        const grown = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heapBefore;
        assert.ok(grown < 64 * 2 ** 20, `the supervisor's memory grew by ${Math.round(grown / 2 ** 20)} MiB`);
        assert.ok(ms < 15_000, `refusing ${lie} took ${Math.round(ms)} ms`);
        assert.deepEqual(
          uncaught.map((e) => e.message),
          [],
        );
        await a.neighbourOk();
      });

    it("its stderr reaches the platform's log only up to a bound", async () => {
      const isolation = Isolation.detect({ nodePath: liarRuntime(), bubblewrap });
      let got = 0;
      const proc = new RevisionProcess(
        'lie-stderr',
        join(isolation.root, 'p'),
        isolation,
        { cpuMs: 1000, egressAllow: [] },
        { exit: () => undefined },
        (_ns, text) => {
          got += text.length;
        },
      );
      await proc.prestart();
      await eventually(() => !proc.alive, 20_000);
      // What it wrote before it exited may still be in the pipe.
      await new Promise((r) => setTimeout(r, 300));
      await proc.close();
      assert.ok(got > 0 && got <= 128 * 1024, `${got} characters of stderr reached the platform log`);
    });

    it("a log record's request id and time are bounded like its message", async () => {
      await deploy('lie-log');
      await eventually(() => a.node.platform.logs.tail('lie-log', 'victim', 100).length > 0);
      const forged = a.node.platform.logs
        .tail('lie-log', 'victim', 100)
        .filter((e) => e.message === 'forged');
      assert.ok(forged.length > 0);
      for (const e of forged) {
        assert.ok((e.requestId?.length ?? 0) <= 128, `a request id of ${e.requestId?.length} characters`);
        assert.ok(
          !Number.isNaN(Date.parse(e.time)) && e.time.length <= 64,
          `a time of ${e.time.length} characters`,
        );
      }
      await a.neighbourOk();
    });
  });

/** Polls the neighbour while `during` runs; returns its slowest answer in ms. */
async function worstNeighbourLatency(a: Arena, during: Promise<unknown>): Promise<number> {
  let done = false;
  void during.finally(() => {
    done = true;
  });
  let worst = 0;
  while (!done) {
    const t = performance.now();
    await (await a.get('/neighbour', { signal: AbortSignal.timeout(30_000) })).text();
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 10));
  }
  return worst;
}

describe('red team 2: binding arguments that cost the supervisor more than they weigh', () => {
  let a: Arena;
  before(async () => {
    a = await arena();
    await apply(
      a.node,
      writeProject({
        'kylix.yaml': [
          'apiVersion: kylix.dev/v1\nkind: Database\nmetadata:\n  name: db\nspec: {}',
          'apiVersion: kylix.dev/v1\nkind: KeyValue\nmetadata:\n  name: kv\nspec: {}',
          'apiVersion: kylix.dev/v1\nkind: Queue\nmetadata:\n  name: q\nspec: {}',
          `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: sparse\nspec:\n  source: ./f.js\n  routes:\n    - path: /sparse\n  limits:\n    timeoutMs: 60000\n  bindings:\n    DB:\n      database: db\n    KV:\n      keyValue: kv\n    Q:\n      queue: q\n`,
        ].join('\n---\n'),
        // Sparse arrays: a length of 2^32-1 costs the function a few bytes to send, and anything
        // that walks it by its length four billion steps. Also: two million values, 200 levels.
        'f.js': `export default { async fetch(request, env) {
          const what = new URL(request.url).searchParams.get('what');
          const sparse = []; sparse.length = 2 ** 32 - 1; sparse[7] = 1;
          const t = Date.now();
          let out;
          try {
            if (what === 'params') out = await env.DB.query('select 1 as one', sparse);
            else if (what === 'metadata') out = await env.KV.put('k', 'v', { metadata: sparse });
            else if (what === 'nested') out = await env.KV.put('k', 'v', { metadata: { a: [{ b: sparse }] } });
            else if (what === 'queue') out = await env.Q.send(sparse);
            else if (what === 'dense') out = await env.DB.query('select 1 as one', new Array(2_000_000).fill(0));
            else if (what === 'deep') { let deep = 1; for (let i = 0; i < 200; i++) deep = [deep]; out = await env.KV.put('k', 'v', { metadata: deep }); }
            out = 'accepted';
          } catch (e) { out = 'refused: ' + e.message; }
          return Response.json({ out, ms: Date.now() - t });
        } };`,
      }),
    );
  });
  after(() => a.close());

  for (const what of ['params', 'metadata', 'nested', 'queue', 'dense', 'deep'])
    it(`arguments too big to walk (${what}) are refused at once, and the node keeps serving`, async () => {
      const call = a
        .get(`/sparse?what=${what}`, { signal: AbortSignal.timeout(60_000) })
        .then((r) => r.json());
      const worst = await worstNeighbourLatency(a, call);
      const got = (await call) as { out: string; ms: number };
      if (process.env.KYLIX_HOSTILE_DEBUG) console.log(what, got, worst);
      assert.ok(worst < 1000, `the neighbour waited ${Math.round(worst)} ms`);
      assert.ok(got.ms < 1000, `the call took ${got.ms} ms: ${got.out}`);
      assert.match(got.out, /^refused: /);
    });
});

describe('red team 2: error messages a function writes into the platform', () => {
  let a: Arena;
  const BIG = 24 * 2 ** 20;
  before(async () => {
    a = await arena();
    await a.deploy({
      // An uncaught exception after the answer: the instance crashes with a 24 MB message.
      'crash-big': {
        spec: 'limits:\n  memoryMiB: 256',
        code: `export default { fetch() { setTimeout(() => { throw new Error('c'.repeat(${BIG})); }, 0); return new Response('ok'); } };`,
      },
    });
  });
  after(() => a.close());

  it("a crash's huge message is cut before it reaches the function's log", async () => {
    for (let i = 0; i < 3; i++) {
      await (await a.get('/crash-big')).text();
      await eventually(async () => (await a.get('/crash-big')).status === 200, 10_000);
    }
    await eventually(() =>
      a.node.platform.logs
        .tail('default', 'crash-big', 100)
        .some((e) => /stopped unexpectedly/.test(e.message)),
    );
    const sizes = a.node.platform.logs.tail('default', 'crash-big', 100).map((e) => e.message.length);
    assert.ok(Math.max(...sizes) <= 20 * 1024, `a log entry of ${Math.max(...sizes)} characters`);
    await a.neighbourOk();
  });

  it('a module that throws a huge error at load is refused with a message of bounded size', async () => {
    await apply(
      a.node,
      writeProject({
        'kylix.yaml': fn('default', 'load-big').replace('/default', '/load-big'),
        'f.js': `throw new Error('l'.repeat(${BIG}));\nexport default { fetch() { return new Response('x'); } };`,
      }),
    ).catch(() => undefined);
    let message = '';
    await eventually(async () => {
      const got = await a.node.client.get('functions', 'load-big');
      message =
        got.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False')?.message ?? '';
      return message !== '';
    }, 20_000);
    assert.ok(message.length <= 20 * 1024, `a status message of ${message.length} characters`);
    await a.neighbourOk();
  });
});
