/**
 * Scenario 6, bindings: KV put/get ops/s, SQL `SELECT $1` queries/s through the binding and through
 * the driver directly (the binding's overhead), and queue messages/s end to end (sent → consumer
 * acked) — on the embedded backends and on the fleet backends (Redis, PostgreSQL, NATS), side by side.
 * Each figure is N calls made inside one request, C in flight, so the gateway's cost is not in it.
 */
import { fileURLToPath } from 'node:url';
import { type KylixNode, startKylix } from '../lib/kylix.js';
import { pinSelf } from '../lib/processes.js';
import type { Metric, Scenario } from '../lib/scenario.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/bindings/', import.meta.url));
const FLEET = {
  KYLIX_REDIS_URL: 'redis://127.0.0.1:6379',
  KYLIX_POSTGRES_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
  KYLIX_NATS_URL: 'nats://127.0.0.1:4222',
};

/**
 * Calls made before each measured figure, on both sides: the binding's path crosses two processes'
 * code (the channel, the codec, the broker), which V8 optimizes over the first thousand calls or so;
 * 200 left the binding measured half-warm against a warm direct call.
 */
const WARMUP_CALLS = 2000;

async function timed(node: KylixNode, path: string, n: number, c: number): Promise<number> {
  const res = await fetch(`${node.gatewayUrl}/b/${path}?n=${n}&c=${c}`);
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  const { ops, ms } = (await res.json()) as { ops: number; ms: number };
  return Math.round((ops / ms) * 1000);
}

/** Sends n messages and waits until the consumer has acked them all; messages/s. */
async function queueEndToEnd(node: KylixNode, n: number): Promise<number> {
  const stats = async () =>
    (await (
      await fetch(`${node.apiUrl}/apis/kylix.dev/v1/namespaces/default/queues/bench-q/stats`)
    ).json()) as { ready: number; inFlight: number; delayed: number };
  const t = performance.now();
  const res = await fetch(`${node.gatewayUrl}/b/send?n=${n}&c=4`);
  if (res.status !== 200) throw new Error(`send: HTTP ${res.status}`);
  for (;;) {
    const s = await stats();
    if (s.ready + s.inFlight + s.delayed === 0) break;
    if (performance.now() - t > 120_000)
      throw new Error(`queue not drained after 120 s: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.round((n / (performance.now() - t)) * 1000);
}

/** The same SELECT through the driver, in this process: what the binding adds is the difference. */
async function direct(fleet: boolean, n: number, c: number): Promise<number> {
  const run = async (query: (i: number) => Promise<unknown>) => {
    // The same warm-up the binding got, so neither side is measured cold.
    for (let i = 0; i < WARMUP_CALLS; i++) await query(i);
    let next = 0;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (next < n) await query(next++);
      }),
    );
    return Math.round((n / (performance.now() - t)) * 1000);
  };
  if (fleet) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: FLEET.KYLIX_POSTGRES_URL, max: c });
    try {
      return await run((i) => pool.query('SELECT $1::int AS n', [i]));
    } finally {
      await pool.end();
    }
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  try {
    return await run((i) => db.query('SELECT $1::int AS n', [i]));
  } finally {
    await db.close();
  }
}

/** A KV store opened in this process for the direct baseline: `get(n)` answers ops/s of n sequential gets. */
interface DirectKv {
  get(n: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * KV get through the provider directly, in this process, on the same backend (a fresh embedded store,
 * or Redis): the baseline for the binding's overhead (a call from the function, through its channel
 * and the broker, to the same provider). Warmed like the binding before it is measured.
 */
async function openDirectKv(fleet: boolean): Promise<DirectKv> {
  const { createKeyValueProvider } = await import('../../src/bindings/keyvalue/index.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'kylix-bench-kv-'));
  const provider = await createKeyValueProvider(
    fleet
      ? { provider: 'redis', url: FLEET.KYLIX_REDIS_URL, keyPrefix: 'bench-direct' }
      : { provider: 'embedded', dataDir: dir },
  );
  const ref = { namespace: 'bench', name: 'direct' };
  await provider.ensure(ref);
  const value = new TextEncoder().encode('value-of-about-thirty-bytes..');
  for (let i = 0; i < 1000; i++) await provider.put(ref, `k${i}`, value);
  const get = async (n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await provider.get(ref, `k${i % 1000}`);
    return Math.round((n / (performance.now() - t)) * 1000);
  };
  await get(WARMUP_CALLS);
  return {
    get,
    async close() {
      await provider.purge(ref).catch(() => undefined);
      await provider.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rounds of the KV get comparison: binding and direct alternate, and each figure is its rounds' median. */
const KV_ROUNDS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/**
 * Runs `measure` with this process moved to `cores` (the server core, where the node that makes the
 * binding's provider call runs), then moves it back to `home`: the direct baseline then pays the
 * same core, and the same wake-ups, as the supervisor's provider call it is compared with.
 */
async function on<T>(
  cores: string | undefined,
  home: string | undefined,
  measure: () => Promise<T>,
): Promise<T> {
  if (cores === undefined) return measure();
  if (!pinSelf(cores)) throw new Error(`could not move the bench process to core ${cores} (taskset)`);
  try {
    return await measure();
  } finally {
    if (home !== undefined) pinSelf(home);
  }
}

/** See the file comment. */
export const bindings: Scenario = {
  id: 6,
  name: 'bindings',
  title: 'Bindings: KV, SQL and queue throughput, embedded and fleet',
  async run(ctx) {
    const n = ctx.config.bindingOps;
    const metrics: Metric[] = [];
    const details: Record<string, unknown> = {};
    const notes = [
      `Each figure: ${n} calls inside one request (sequential, then 16 in flight); the function and the node share core ${ctx.cores.server}.`,
      `SQL "direct" is the same statement through the driver in the bench process (PGlite in memory; pg against PostgreSQL), the bench process moved to core ${ctx.cores.server} for it (where the node makes the binding's provider calls).`,
      `KV get "direct provider": the same provider (a fresh embedded store, or Redis) called in the bench process, one in flight, on core ${ctx.cores.server} like the node; "direct provider, client core" is the same loop on the bench's own core ${ctx.cores.client} (the baseline before 2026-12-02's sixth session). Binding and direct alternate over ${KV_ROUNDS} rounds; each figure is its rounds' median. Redis runs wherever the OS puts it (the machine's own server): on this VM a call costs about twice as much CPU when Redis is on the other core (BENCHMARKS.md, thirteenth session).`,
      'Queue end to end: messages sent in batches of 100 from inside the function, until the consumer has acked all of them (queue stats empty).',
    ];
    const onServer = <T>(measure: () => Promise<T>) => on(ctx.cores.server, ctx.cores.client, measure);
    for (const [config, env] of [
      ['embedded', {}],
      ['fleet', FLEET],
    ] as const) {
      ctx.log(`bindings on the ${config} backends`);
      const node = await startKylix({ manifests: [FIXTURE], cpus: ctx.cores.server, env });
      try {
        // Warm-up (opens the backends, and lets V8 optimize both ends of the channel).
        await timed(node, 'kv-put', WARMUP_CALLS, 1);
        await timed(node, 'kv-get', WARMUP_CALLS, 1);
        await timed(node, 'sql', WARMUP_CALLS, 1);
        const figures = {
          'KV put ops/s': await timed(node, 'kv-put', n, 1),
          'KV put ops/s (16 in flight)': await timed(node, 'kv-put', n, 16),
          'KV get ops/s': 0, // the median of the alternating rounds below
          'KV get ops/s (16 in flight)': await timed(node, 'kv-get', n, 16),
          'SQL queries/s via binding': await timed(node, 'sql', n, 1),
          'SQL queries/s via binding (16 in flight)': await timed(node, 'sql', n, 16),
          'SQL queries/s direct driver': await onServer(() => direct(config === 'fleet', n, 1)),
          'SQL queries/s direct driver (16 in flight)': await onServer(() =>
            direct(config === 'fleet', n, 16),
          ),
          'queue msgs/s end to end': await queueEndToEnd(node, Math.max(1000, n)),
        };
        // Binding and direct one after the other, KV_ROUNDS times, so a slow phase of the machine
        // (they move by a third minutes apart) falls on both; the direct call on the node's core and,
        // for reference, on the bench's own.
        const kv = await openDirectKv(config === 'fleet');
        const rounds = { binding: [] as number[], direct: [] as number[], clientCore: [] as number[] };
        try {
          for (let r = 0; r < KV_ROUNDS; r++) {
            rounds.binding.push(await timed(node, 'kv-get', n, 1));
            rounds.direct.push(await onServer(() => kv.get(n)));
            rounds.clientCore.push(await kv.get(n));
          }
        } finally {
          await kv.close();
        }
        figures['KV get ops/s'] = median(rounds.binding);
        const directGet = median(rounds.direct);
        const directGetClientCore = median(rounds.clientCore);
        details[`${config} KV get rounds`] = rounds;
        details[config] = {
          ...figures,
          'KV get ops/s direct provider': directGet,
          'KV get ops/s direct provider, client core': directGetClientCore,
        };
        for (const [name, value] of Object.entries(figures))
          metrics.push({ name: `${config}: ${name}`, value, unit: '/s' });
        metrics.push({ name: `${config}: KV get ops/s direct provider`, value: directGet, unit: '/s' });
        // Issue 10: a binding call (one in flight) costs at most 1.5 x the provider call itself.
        metrics.push({
          name: `${config}: KV get binding overhead (time per call, binding / direct)`,
          value: Math.round((directGet / figures['KV get ops/s']) * 100) / 100,
          unit: '×',
          target: { op: '<=', value: 1.5 },
        });
        metrics.push({
          name: `${config}: KV get binding / direct on the client core (the earlier baseline)`,
          value: Math.round((directGetClientCore / figures['KV get ops/s']) * 100) / 100,
          unit: '×',
        });
      } catch (err) {
        notes.push(`${config}: not measured: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await node.stop();
      }
    }
    return { metrics, details, notes };
  },
};
