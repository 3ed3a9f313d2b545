/**
 * Prometheus metrics as an operator meets them: a running node's /metrics, in the text exposition
 * format promtool accepts, scraped by a real Prometheus server and queried over its HTTP API.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createQueueProvider } from '../../src/bindings/queue/index.js';
import { loadInstallation } from '../../src/config/installation.js';
import { verbAndKind } from '../../src/control-plane/api-metrics.js';
import { openEmbeddedStore } from '../../src/control-plane/store/embedded.js';
import { PlatformMetrics } from '../../src/observability/metrics.js';
import { Scheduler } from '../../src/triggers/scheduler.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';

const NATS_URL = process.env.KYLIX_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** The path of a command, or undefined when it is not installed. */
function which(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port free right now (Prometheus cannot report the port it took for :0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The value of one sample line `name{labels} value` whose labels include all of `want`. */
function sample(text: string, name: string, want: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(want).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics', () => {
  let node: TestNode;
  let text = '';
  /** The exposition while the function's instance is up (the timeout below stops it). */
  let warm = '';
  before(async () => {
    node = await startNode();
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1',
        'kind: KeyValue',
        'metadata: { name: counts }',
        'spec: {}',
        '---',
        functionManifest(
          'counter',
          './c.ts',
          ['/count', '/slow'],
          '  limits:\n    timeoutMs: 300\n  bindings:\n    KV: { keyValue: counts }',
        ),
      ].join('\n'),
      'c.ts': `export default { async fetch(req, env) {
        if (new URL(req.url).pathname === '/slow') await new Promise((r) => setTimeout(r, 2000));
        await env.KV.put('n', '1');
        return new Response(await env.KV.get('n'));
      } };\n`,
    });
    assert.ok((await apply(node, dir)).ok);
    for (let i = 0; i < 5; i++) assert.equal((await fetch(node.url('/count'))).status, 200);
    warm = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
    assert.equal((await fetch(node.url('/slow'))).status, 504);
    // The timeout stopped the instance: the next request waits for a new one (a cold start).
    assert.equal((await fetch(node.url('/count'))).status, 200);
    text = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
  });
  after(async () => {
    await node.destroy();
  });

  it('counts requests per function and revision by status class and error code', () => {
    const fn = { namespace: 'default', function: 'counter', revision: '1' };
    assert.equal(sample(text, 'kylix_requests_total', { ...fn, code_class: '2xx', error_code: '' }), 6);
    assert.equal(
      sample(text, 'kylix_requests_total', { ...fn, code_class: '5xx', error_code: 'ERR_TIMEOUT' }),
      1,
    );
    assert.equal(sample(text, 'kylix_request_duration_seconds_count', fn), 7);
    // The function's own share: every request reached an instance; it is never longer than the whole.
    assert.equal(sample(text, 'kylix_function_duration_seconds_count', fn), 7);
    assert.ok(
      (sample(text, 'kylix_function_duration_seconds_sum', fn) ?? 0) <=
        (sample(text, 'kylix_request_duration_seconds_sum', fn) ?? 0),
    );
    assert.equal(sample(text, 'kylix_limit_breaches_total', { ...fn, kind: 'timeout' }), 1);
    const cold = sample(text, 'kylix_cold_starts_total', fn) ?? 0;
    assert.ok(cold >= 1);
    assert.equal(sample(text, 'kylix_cold_start_wait_seconds_count', fn), cold);
    assert.equal(sample(warm, 'kylix_instances', { ...fn, state: 'running' }), 1);
    assert.equal(sample(warm, 'kylix_instances', { ...fn, state: 'starting' }), 0);
    assert.equal(sample(warm, 'kylix_in_flight_requests', fn), 0);
    assert.equal(sample(warm, 'kylix_gateway_in_flight_requests'), 0);
  });

  it("reports each revision's sandbox CPU and memory, read from the supervisor's side", () => {
    const fn = { namespace: 'default', function: 'counter', revision: '1' };
    const rss = sample(warm, 'kylix_sandbox_memory_bytes', fn) ?? 0;
    // A Node process with a worker holds tens of MiB; far less means the wrong process was read.
    assert.ok(rss > 20 * 2 ** 20 && rss < 4 * 2 ** 30, `resident bytes: ${rss}`);
    const cpu = sample(warm, 'kylix_sandbox_cpu_seconds_total', fn) ?? 0;
    assert.ok(cpu > 0 && cpu < 600, `CPU seconds: ${cpu}`);
  });

  it('counts reconciles per controller, and requests refused before dispatch with their code', async () => {
    assert.ok((sample(text, 'kylix_reconcile_duration_seconds_count', { controller: 'function' }) ?? 0) >= 1);
    assert.ok((sample(text, 'kylix_reconcile_duration_seconds_count', { controller: 'resource' }) ?? 0) >= 1);
    assert.equal(sample(text, 'kylix_reconcile_failures_total', { controller: 'function' }), undefined);
    // A tag the function does not have: refused before a revision is picked.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(node.url('/count'), { headers: { 'kylix-revision': 'nope' } });
      assert.equal(res.status, 404);
    }
    const after = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
    const refused = { function: 'counter', revision: '', code_class: '4xx', error_code: 'ERR_NOT_FOUND' };
    assert.equal(sample(after, 'kylix_requests_total', refused), 3);
  });

  it('counts binding calls by kind and operation, never by request', () => {
    const kv = { namespace: 'default', function: 'counter', kind: 'keyValue' };
    assert.equal(sample(text, 'kylix_binding_calls_total', { ...kv, op: 'get' }), 6);
    // The slow request put once before its timeout stopped the instance.
    assert.ok((sample(text, 'kylix_binding_calls_total', { ...kv, op: 'put' }) ?? 0) >= 6);
    assert.equal(
      sample(text, 'kylix_binding_call_duration_seconds_count', { kind: 'keyValue', op: 'get' }),
      6,
    );
    assert.doesNotMatch(text, /request_?id|path=/);
  });

  it('counts control API requests by verb, kind and code, and exposes process metrics', () => {
    assert.ok((sample(text, 'kylix_api_requests_total', { verb: 'patch', kind: 'functions' }) ?? 0) >= 1);
    assert.ok(sample(text, 'kylix_api_request_duration_seconds_count', { verb: 'patch', kind: 'functions' }));
    assert.notEqual(sample(text, 'nodejs_eventloop_lag_seconds'), undefined);
    assert.notEqual(sample(text, 'process_resident_memory_bytes'), undefined);
    assert.equal(sample(text, 'kylix_queue_messages_ready'), undefined, 'no queue, no queue series');
  });

  it('labels API requests from a fixed set of verbs and kinds', () => {
    const q = new URLSearchParams();
    assert.deepEqual(verbAndKind('GET', '/apis/kylix.dev/v1/namespaces/a/functions/x/log', q), {
      verb: 'log',
      kind: 'functions',
    });
    assert.deepEqual(
      verbAndKind('GET', '/apis/kylix.dev/v1/namespaces/a/functions', new URLSearchParams('watch=true')),
      {
        verb: 'watch',
        kind: 'functions',
      },
    );
    assert.deepEqual(verbAndKind('GET', '/apis/kylix.dev/v1/namespaces/a/zzz-made-up/x/yyy', q), {
      verb: 'other',
      kind: 'other',
    });
    assert.deepEqual(verbAndKind('BREW', '/whatever/123', q), { verb: 'other', kind: 'other' });
  });

  it('needs the API token when the node has one', async () => {
    const guarded = await startNode({ token: 'sekret' });
    try {
      assert.equal((await fetch(`${guarded.platform.apiUrl}/metrics`)).status, 401);
      const ok = await fetch(`${guarded.platform.apiUrl}/metrics`, {
        headers: { authorization: 'Bearer sekret' },
      });
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    } finally {
      await guarded.destroy();
    }
  });

  it('passes promtool check metrics', (t) => {
    const promtool = which('promtool');
    if (!promtool) return t.skip('promtool is not installed (apt-get install prometheus)');
    // promtool exits 3 on any naming lint finding (prom-client's own nodejs_active_*_total gauges
    // were such findings): a user who lints a scrape in CI gets a failure. None is allowed.
    const run = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(`${run.stdout}${run.stderr}`.trim(), '');
    assert.equal(run.status, 0);
    assert.match(text, /^nodejs_active_handles\{type="\w+"\} \d+$/m);
  });

  it('is scraped by a real Prometheus and answers its queries', async (t) => {
    const prometheus = which('prometheus');
    if (!prometheus) return t.skip('prometheus is not installed (apt-get install prometheus)');
    const dir = tempDir('prometheus');
    const target = new URL(node.platform.apiUrl).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: kylix\n    static_configs: [{ targets: ['${target}'] }]\n`,
    );
    const port = await freePort();
    const child: ChildProcess = spawn(
      prometheus,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as {
        status: string;
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      assert.equal(body.status, 'success');
      return body.data.result;
    };
    try {
      await eventually(
        async () => {
          try {
            return (await query('up{job="kylix"} == 1')).length === 1;
          } catch {
            return false;
          }
        },
        30_000,
        200,
      );
      const requests = await query(
        'sum by (function, code_class) (kylix_requests_total{function="counter"})',
      );
      const byClass = Object.fromEntries(requests.map((r) => [r.metric.code_class, Number(r.value[1])]));
      // The 4xx are the refused requests of the test above (an unknown revision tag).
      assert.deepEqual(byClass, { '2xx': 6, '4xx': 3, '5xx': 1 });
      const p99 = await query(
        'histogram_quantile(0.99, sum by (le) (kylix_request_duration_seconds_bucket{function="counter"}))',
      );
      assert.equal(p99.length, 1);
      assert.ok(Number(p99[0]?.value[1]) > 0);
    } finally {
      child.kill();
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('queue metrics', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ consumer: { backoffBaseSeconds: 0.02, waitMs: 50 } });
  });
  after(async () => {
    await node.destroy();
  });

  it('counts deliveries by outcome and reports queue depth', async () => {
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1',
        'kind: Queue',
        'metadata: { name: jobs }',
        'spec: {}',
        '---',
        'apiVersion: kylix.dev/v1',
        'kind: Queue',
        'metadata: { name: jobs-dlq }',
        'spec: {}',
        '---',
        functionManifest(
          'failing',
          './f.ts',
          ['/failing'],
          '  triggers:\n    queue: { name: jobs, maxRetries: 1, deadLetter: jobs-dlq }',
        ),
      ].join('\n'),
      'f.ts':
        "export default { fetch() { return new Response('ok'); }, queue() { throw new Error('always'); } };\n",
    });
    assert.ok((await apply(node, dir)).ok);
    const send = await node.client.raw('POST', `${node.client.path('queues', 'jobs')}/messages`, {
      body: JSON.stringify({ body: { n: 1 } }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(send.status, 204);
    let text = '';
    const labels = { namespace: 'default', queue: 'jobs', function: 'failing' };
    await eventually(
      async () => {
        text = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
        return sample(text, 'kylix_queue_deliveries_total', { ...labels, result: 'dead_lettered' }) === 1;
      },
      15_000,
      50,
    );
    assert.equal(sample(text, 'kylix_queue_deliveries_total', { ...labels, result: 'retried' }), 1);
    // Queue figures are read from the provider at most every few seconds (a cache bounds the cost).
    const dlq = { namespace: 'default', queue: 'jobs-dlq' };
    await eventually(
      async () => {
        text = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
        return sample(text, 'kylix_queue_messages_ready', dlq) === 1;
      },
      15_000,
      100,
    );
    assert.equal(sample(text, 'kylix_queue_messages_ready', { namespace: 'default', queue: 'jobs' }), 0);
    const age = sample(text, 'kylix_queue_oldest_message_age_seconds', dlq);
    assert.ok(age !== undefined && age >= 0 && age < 60, `the dead letter's age: ${age}`);
    assert.equal(
      sample(text, 'kylix_queue_oldest_message_age_seconds', { namespace: 'default', queue: 'jobs' }),
      undefined,
      'an empty queue has no oldest message',
    );
  });
});

describe('overload, watch and control-plane metrics', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('counts 429 refusals in kylix_requests_total with their error code', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('narrow', './n.ts', ['/narrow'], '  limits:\n    maxConcurrency: 1'),
      'n.ts': `export default { async fetch() {
        await new Promise((r) => setTimeout(r, 800));
        return new Response('done');
      } };\n`,
    });
    assert.ok((await apply(node, dir)).ok);
    const statuses = await Promise.all(
      Array.from({ length: 14 }, async () => (await fetch(node.url('/narrow'))).status),
    );
    const refused = statuses.filter((s) => s === 429).length;
    assert.ok(refused >= 1 && statuses.includes(200), `statuses: ${statuses.join(' ')}`);
    const text = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
    const fn = { namespace: 'default', function: 'narrow', revision: '1' };
    assert.equal(
      sample(text, 'kylix_requests_total', { ...fn, code_class: '4xx', error_code: 'ERR_TOO_MANY_REQUESTS' }),
      refused,
    );
    assert.equal(
      sample(text, 'kylix_requests_total', { ...fn, code_class: '2xx' }),
      statuses.filter((s) => s === 200).length,
    );
  });

  it('counts the watch clients the API holds open', async () => {
    const metric = async () =>
      sample(await (await fetch(`${node.platform.apiUrl}/metrics`)).text(), 'kylix_api_watch_clients', {
        kind: 'functions',
      }) ?? 0;
    const abort = new AbortController();
    const res = await fetch(
      `${node.platform.apiUrl}/apis/kylix.dev/v1/namespaces/default/functions?watch=true`,
      {
        signal: abort.signal,
      },
    );
    assert.equal(res.status, 200);
    await eventually(async () => (await metric()) === 1, 5000, 20);
    abort.abort();
    await res.body?.cancel().catch(() => undefined);
    await eventually(async () => (await metric()) === 0, 5000, 20);
  });
});

describe('cron misses', () => {
  it('counts ticks skipped during downtime and runs that came late', async () => {
    const dir = tempDir('cron-metrics');
    const store = await openEmbeddedStore(dir);
    const metrics = new PlatformMetrics();
    let clock = Date.parse('2026-11-24T10:00:00.500Z');
    const fired: number[] = [];
    const scheduler = () =>
      new Scheduler(
        store,
        async (_t, event) => {
          fired.push(event.scheduledTime);
        },
        () => {},
        () => clock,
        (t, reason, count) => metrics.cronMissed(t.namespace, t.functionName, reason, count),
      );
    const target = { namespace: 'default', functionName: 'tick', cron: '* * * * *', timezone: 'UTC' };
    try {
      const a = scheduler();
      await a.set(target);
      clock = Date.parse('2026-11-24T10:01:00.100Z');
      await a.runDue();
      assert.equal(fired.length, 1, 'an on-time tick is no miss');
      a.close();
      // Down for five minutes: one catch-up run (30 s late), four ticks skipped.
      clock += 5 * 60_000 + 30_000;
      const b = scheduler();
      await b.set(target);
      assert.equal(fired.length, 2);
      b.close();
      const text = await metrics.render();
      const fn = { namespace: 'default', function: 'tick' };
      assert.equal(sample(text, 'kylix_cron_misses_total', { ...fn, reason: 'skipped' }), 4);
      assert.equal(sample(text, 'kylix_cron_misses_total', { ...fn, reason: 'late' }), 1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const natsDown = await reachable(NATS_URL);
if (natsDown) console.log(`# skipping queue metrics on NATS: ${natsDown}`);

describe('queue metrics on NATS JetStream', { skip: natsDown }, () => {
  it('reports depth and oldest message age from the NATS provider', async () => {
    const node = await startNode({
      installation: loadInstallation(undefined, { KYLIX_NATS_URL: NATS_URL }),
    });
    const name = `m${Date.now().toString(36)}`;
    try {
      const dir = writeProject({
        'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Queue\nmetadata: { name: ${name} }\nspec: {}\n`,
      });
      assert.ok((await apply(node, dir)).ok);
      for (let i = 0; i < 2; i++) {
        const send = await node.client.raw('POST', `${node.client.path('queues', name)}/messages`, {
          body: JSON.stringify({ body: { i } }),
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(send.status, 204);
      }
      const labels = { namespace: 'default', queue: name };
      let text = '';
      await eventually(
        async () => {
          text = await (await fetch(`${node.platform.apiUrl}/metrics`)).text();
          return sample(text, 'kylix_queue_messages_ready', labels) === 2;
        },
        15_000,
        100,
      );
      assert.equal(sample(text, 'kylix_queue_messages_in_flight', labels), 0);
      const age = sample(text, 'kylix_queue_oldest_message_age_seconds', labels);
      assert.ok(age !== undefined && age >= 0 && age < 60, `oldest age: ${age}`);
    } finally {
      await node.destroy();
      // The stream outlives the node: remove it from the shared NATS server.
      const nats = await createQueueProvider({ provider: 'nats', url: NATS_URL });
      await nats.purge({ namespace: 'default', name });
      await nats.close();
    }
  });
});
