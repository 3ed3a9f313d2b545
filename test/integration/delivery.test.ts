/**
 * Queue delivery under crashes (issue 4). `kylix server` runs as a child process; producers send
 * 10,000 messages with unique ids through a function's fetch handler, while the same function's
 * queue(batch) handler consumes them into an idempotent effect per id. The server is killed with
 * SIGKILL three times along the way and restarted on the same data folder; a send that failed with
 * it is sent again with the same ids, as a real producer would. Once the queue is drained: every
 * acknowledged message has its effect (no loss), there are exactly 10,000 effects, no message id
 * ever named two messages, and the duplicate deliveries (at-least-once) are counted and reported.
 *
 * Runs on the embedded backends, and on NATS JetStream + Redis when they answer on 127.0.0.1.
 * The server runs from dist/ (`npm test` builds it first). The poison message / dead-letter /
 * redrive path is covered, on the same two installations, in bindings.test.ts.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyManifests } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import { eventually } from '../helpers/eventually.js';
import { writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';

const KYLIX = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));
const TOTAL = 10_000;
/** Messages per producer request (one sendBatch). */
const SEND_BATCH = 50;
/** Producers sending at once, so that a kill finds sends in flight. */
const PRODUCERS = 4;
/** Producers hold back while this many messages wait, so a kill also finds the consumer busy. */
const MAX_BACKLOG = 2_000;
/** The server is killed once this many messages are acknowledged to the producers. */
const KILL_AT = [2_500, 5_000, 7_500];
/**
 * Each body carries this much padding, so that 10,000 messages pass 16 MiB in the embedded queue's
 * journal and it is compacted during the run: a kill may then land on a compacted journal.
 */
const PAD_BYTES = 2048;
/** How long a producer keeps sending one batch again before the test fails. */
const SEND_DEADLINE_MS = 60_000;

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

const PROJECT = {
  'kylix.yaml': `
apiVersion: kylix.dev/v1
kind: KeyValue
metadata: { name: effects }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Queue
metadata: { name: work }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Queue
metadata: { name: work-dlq }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Function
metadata: { name: worker }
spec:
  source: ./worker.js
  routes:
    - path: /produce
      methods: [POST]
  bindings:
    EFFECTS: { keyValue: effects }
    WORK: { queue: work }
  triggers:
    queue: { name: work, batchSize: 50, maxRetries: 3, deadLetter: work-dlq }
`,
  // The effect of a message is idempotent: one key per id. Each delivery of a batch also leaves a
  // record of its own (message id and body id of each message), so deliveries can be counted.
  'worker.js': `
const PAD = 'x'.repeat(${PAD_BYTES});
export default {
  async fetch(request, env) {
    const ids = await request.json();
    await env.WORK.sendBatch(ids.map((id) => ({ body: { id, pad: PAD } })));
    return Response.json({ sent: ids.length });
  },
  async queue(batch, env) {
    const seen = batch.messages.map((m) => [m.id, m.body.id]);
    await env.EFFECTS.put('delivery:' + crypto.randomUUID(), JSON.stringify(seen));
    await Promise.all(batch.messages.map((m) => env.EFFECTS.put('effect:' + m.body.id, '1')));
    for (const m of batch.messages) m.ack();
  },
};
`,
};

/** A running `kylix server` child process. */
interface Server {
  child: ChildProcess;
  gateway: string;
  client: ApiClient;
  exited: Promise<void>;
}

/** Starts `kylix server` on `dataDir` (ports 0) and resolves once it prints its addresses. */
async function startServer(dataDir: string, env: NodeJS.ProcessEnv, namespace: string): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      KYLIX,
      'server',
      '--insecure-sandbox',
      '--no-tls',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--api-port',
      '0',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000);
  });
  const addresses = await new Promise<{ api: string; gateway: string }>((resolve, reject) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const api = /control API\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
      const gateway = /gateway\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
      if (api && gateway) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({ api, gateway });
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(() => reject(new Error(`kylix server exited before it listened:\n${out}\n${err}`)));
  });
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    child,
    gateway: addresses.gateway,
    client: new ApiClient({ server: addresses.api, token, namespace }),
    exited,
  };
}

interface Stats {
  ready: number;
  inFlight: number;
  delayed: number;
}

const stats = async (client: ApiClient) =>
  (await client.json<Stats>('GET', `${client.path('queues', 'work')}/stats`)).data;

/** The name of every key under `prefix` in the effects KeyValue, page by page. */
async function listAll(client: ApiClient, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const q = new URLSearchParams({ prefix, limit: '1000', ...(cursor ? { cursor } : {}) });
    const { data } = await client.json<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>(
      'GET',
      `${client.path('keyvalues', 'effects')}/keys?${q}`,
    );
    names.push(...data.keys.map((k) => k.name));
    if (data.list_complete) return names;
    cursor = data.cursor;
  }
}

/** The [message id, body id] pairs of every recorded delivery. */
async function deliveries(client: ApiClient): Promise<[string, string][]> {
  const keys = await listAll(client, 'delivery:');
  const out: [string, string][] = [];
  for (let i = 0; i < keys.length; i += 16) {
    const values = await Promise.all(
      keys.slice(i, i + 16).map(async (key) => {
        const res = await client.raw(
          'GET',
          `${client.path('keyvalues', 'effects')}/keys/${encodeURIComponent(key)}`,
        );
        return JSON.parse(await res.text()) as [string, string][];
      }),
    );
    for (const v of values) out.push(...v);
  }
  return out;
}

/** What one run measured. */
interface Figures {
  ms: number;
  resent: number;
  deliveries: number;
  redeliveries: number;
  extraMessages: number;
}

/** The whole run on one installation (`env` chooses its backends). */
async function crashRun(env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<Figures> {
  const started = Date.now();
  const dataDir = tempDir('delivery');
  // A fresh namespace per run: the fleet backends keep data between runs.
  const namespace = `d${randomBytes(4).toString('hex')}`;
  let server = await startServer(dataDir, env, namespace);
  const project = writeProject(PROJECT);
  await applyManifests(server.client, [project], { out: () => {} });

  // 1. Kill the server (at once, whatever is in flight) and start it again on the same folder.
  let restarting: Promise<void> | undefined;
  const kills = [...KILL_AT];
  const acked = new Set<string>();
  let sending = 0;
  let resent = 0;
  const crash = () => {
    const victim = server;
    victim.child.kill('SIGKILL');
    log(
      `kill -9 (${KILL_AT.length - kills.length} of ${KILL_AT.length}) at ${acked.size} acknowledged, ${sending} sends in flight`,
    );
    restarting = (async () => {
      await victim.exited;
      server = await startServer(dataDir, env, namespace);
      log(`restarted; the queue holds ${JSON.stringify(await stats(server.client))}`);
    })().finally(() => {
      restarting = undefined;
    });
  };
  /** Runs `call` on the current server, again (on the restarted one) until it succeeds. */
  const retrying = async <T>(what: string, call: (s: Server) => Promise<T>): Promise<T> => {
    const deadline = Date.now() + SEND_DEADLINE_MS;
    for (;;) {
      if (restarting) await restarting;
      try {
        return await call(server);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${what} failed for ${SEND_DEADLINE_MS} ms: ${err}`);
        // Down, or not serving yet: a producer's retry interval.
        if (!restarting) await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  // 2. Produce, with a backlog limit; a batch counts as acknowledged only on a 200.
  const batches: string[][] = [];
  for (let i = 0; i < TOTAL; i += SEND_BATCH)
    batches.push(Array.from({ length: SEND_BATCH }, (_, j) => `m${String(i + j).padStart(5, '0')}`));
  const produce = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      await eventually(
        async () => (await retrying('reading the queue stats', (s) => stats(s.client))).ready < MAX_BACKLOG,
        60_000,
      );
      let attempts = 0;
      await retrying(`sending ${batch[0]}…`, async (s) => {
        if (attempts++ > 0) resent += SEND_BATCH;
        sending++;
        try {
          const res = await fetch(`${s.gateway}/produce`, { method: 'POST', body: JSON.stringify(batch) });
          if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
        } finally {
          sending--;
        }
      });
      for (const id of batch) acked.add(id);
      // Kill while another producer waits for its send, so that a send is cut off too.
      if (kills[0] !== undefined && acked.size >= kills[0] && sending > 0 && !restarting) {
        kills.shift();
        crash();
      }
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, produce));
  if (restarting) await restarting;
  assert.deepEqual(kills, [], 'the server was killed three times');
  assert.equal(acked.size, TOTAL);
  log(`produced ${TOTAL} in ${Date.now() - started} ms; ${resent} sent again after a failure`);

  // 3. Wait until the queue is drained (on NATS, a dead node's leases end after 30 s).
  const { client } = server;
  let last: Stats | undefined;
  await eventually(async () => {
    last = await stats(client);
    return last.ready + last.inFlight + last.delayed === 0;
  }, 100_000).catch((err: Error) => {
    throw new Error(`${err.message}: the queue still holds ${JSON.stringify(last)}`);
  });
  log(`drained after ${Date.now() - started} ms`);

  // 4. No loss: every acknowledged id has its effect, and nothing else has one.
  const effects = new Set((await listAll(client, 'effect:')).map((k) => k.slice('effect:'.length)));
  const lost = [...acked].filter((id) => !effects.has(id));
  assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged messages have no effect`);
  assert.equal(effects.size, TOTAL, 'exactly one effect per id');
  const { data: dlq } = await client.json<{ messages: unknown[] }>(
    'GET',
    `${client.path('queues', 'work-dlq')}/messages`,
  );
  assert.equal(dlq.messages.length, 0, 'no message was dead-lettered');

  // 5. Duplicates are allowed (at-least-once) and counted; a message id names one message only.
  const seen = await deliveries(client);
  const bodyOf = new Map<string, string>();
  for (const [messageId, bodyId] of seen) {
    const earlier = bodyOf.get(messageId);
    assert.ok(
      earlier === undefined || earlier === bodyId,
      `message id ${messageId} was given to ${earlier} and to ${bodyId}`,
    );
    bodyOf.set(messageId, bodyId);
  }
  assert.equal(new Set(bodyOf.values()).size, TOTAL, 'every id was delivered');

  if (!env.KYLIX_NATS_URL) {
    // About 30 MB of records were written: a smaller journal was compacted along the way.
    const { size } = statSync(join(dataDir, 'queues', 'queue.journal'));
    log(`the embedded queue journal holds ${(size / 1e6).toFixed(1)} MB`);
  }

  // Leave nothing behind in the fleet backends, and stop the server as an operator would.
  for (const [plural, name] of [
    ['functions', 'worker'],
    ['keyvalues', 'effects'],
    ['queues', 'work'],
    ['queues', 'work-dlq'],
  ] as const)
    await client.raw('DELETE', `${client.path(plural, name)}?purge=true`).catch(() => undefined);
  const stopping = Date.now();
  server.child.kill('SIGTERM');
  await server.exited;
  log(`stopped by SIGTERM in ${Date.now() - stopping} ms`);
  return {
    ms: Date.now() - started,
    resent,
    deliveries: seen.length,
    redeliveries: seen.length - bodyOf.size,
    extraMessages: bodyOf.size - TOTAL,
  };
}

/** The env of a server child: none of this shell's KYLIX_* settings, plus `extra`. */
function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KYLIX_')));
  return { ...env, ...extra };
}

/** The fleet's env, or why it cannot run here. */
async function fleetEnv(): Promise<{ env?: NodeJS.ProcessEnv; skip?: string }> {
  const urls = { nats: 'nats://127.0.0.1:4222', redis: 'redis://127.0.0.1:6379' };
  for (const [name, url] of Object.entries(urls)) {
    const problem = await reachable(url);
    if (problem) return { skip: `${name} is not reachable at ${url}: ${problem}` };
  }
  return { env: serverEnv({ KYLIX_NATS_URL: urls.nats, KYLIX_REDIS_URL: urls.redis }) };
}

describe(`queue delivery: ${TOTAL} messages, kill -9 of the server three times`, () => {
  const configs = [
    ['embedded', async () => ({ env: serverEnv() })],
    ['fleet (NATS JetStream, Redis)', fleetEnv],
  ] as const;
  for (const [config, setup] of configs) {
    it(`${config}: no acknowledged message is lost; an idempotent consumer ends with exactly ${TOTAL} effects`, async (t) => {
      const { env, skip } = (await setup()) as { env?: NodeJS.ProcessEnv; skip?: string };
      if (!env) {
        console.log(`# skipping the ${config} delivery test: ${skip}`);
        return t.skip(skip);
      }
      const f = await crashRun(env, (line) => t.diagnostic(line));
      t.diagnostic(
        `${config}: 0 lost; ${f.deliveries} deliveries for ${TOTAL} ids = ${f.deliveries - TOTAL} duplicates ` +
          `(${f.redeliveries} redeliveries of a message, ${f.extraMessages} extra messages from ${f.resent} ids sent again); ` +
          `${(f.ms / 1000).toFixed(1)} s`,
      );
    });
  }
});
