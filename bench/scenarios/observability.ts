/**
 * Scenario 10, the cost of observability: the hello-world function on three Kylix nodes in the same
 * run — metrics off (KYLIX_METRICS=0) and no traces, metrics on (the default), and metrics plus
 * traces exported over OTLP/HTTP to a sink in the harness — with rounds alternating between them, so
 * the machine's drift hits all three alike. Reports req/s, p50/p99 and CPU per request of each, and
 * the overhead of metrics and of traces relative to off.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cpuSnapshot, cpuUsage } from '../lib/cpu.js';
import { type KylixNode, ROOT, startKylix } from '../lib/kylix.js';
import { type LoadResult, loadTest } from '../lib/load.js';
import type { Metric, Scenario } from '../lib/scenario.js';

const FIXTURES = join(ROOT, 'bench', 'fixtures', 'hello');

/** The three configurations, by name, with the environment each node starts with. */
function configurations(sinkUrl: string): { name: string; env: Record<string, string> }[] {
  return [
    { name: 'off', env: { KYLIX_METRICS: '0', OTEL_SDK_DISABLED: 'true' } },
    { name: 'metrics', env: { OTEL_SDK_DISABLED: 'true' } },
    {
      name: 'metrics+traces',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' },
    },
  ];
}

/** An OTLP/HTTP collector that accepts and discards what it is sent, counting the bytes. */
async function startSink(): Promise<{ server: Server; url: string; bytes: () => number }> {
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, bytes: () => bytes };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** See the file comment. */
export const observability: Scenario = {
  id: 10,
  name: 'observability',
  title: 'Cost of metrics and tracing on hello world (on vs off)',
  async run(ctx) {
    const { config } = ctx;
    const sink = await startSink();
    const nodes: { name: string; node: KylixNode }[] = [];
    try {
      for (const c of configurations(sink.url)) {
        ctx.log(`starting kylix dev (${c.name})`);
        nodes.push({
          name: c.name,
          node: await startKylix({ manifests: [FIXTURES], cpus: ctx.cores.server, env: c.env }),
        });
      }
      const rounds = new Map<string, (LoadResult & { cpuUsPerRequest: number })[]>(
        nodes.map((n) => [n.name, []]),
      );
      for (let r = 0; r < config.rounds; r++) {
        const order = nodes.map((_, i) => nodes[(i + r) % nodes.length]!);
        for (const { name, node } of order) {
          const url = `${node.gatewayUrl}/hello`;
          const load = { connections: config.connections, cpus: ctx.cores.client };
          if (config.warmupS > 0) await loadTest(url, { ...load, durationS: config.warmupS });
          const pid = node.child.pid;
          const before = cpuSnapshot(pid);
          const measured = await loadTest(url, { ...load, durationS: config.durationS });
          const cpu = cpuUsage(before, cpuSnapshot(pid));
          const seconds = Object.values(cpu.processCpuS).reduce((a, b) => a + b, 0);
          const requests = measured.ok + measured.non2xx;
          const cpuUsPerRequest = requests > 0 ? Math.round((seconds * 1e6) / requests) : Number.NaN;
          rounds.get(name)!.push({ ...measured, cpuUsPerRequest });
          ctx.log(
            `round ${r + 1}/${config.rounds} ${name.padEnd(15)} ${measured.rps} req/s  p50 ${measured.p50} ms  p99 ${measured.p99} ms  ${cpuUsPerRequest} µs CPU/req`,
          );
        }
      }
      // The metrics node must really expose them, and the traced one really export spans.
      const metricsNode = nodes.find((n) => n.name === 'metrics')!.node;
      const exposition = await (await fetch(`${metricsNode.apiUrl}/metrics`)).text();
      const served = [...exposition.matchAll(/^kylix_requests_total\{[^}]*code_class="2xx"[^}]*\} (\d+)/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
      const offNode = nodes.find((n) => n.name === 'off')!.node;
      const offStatus = (await fetch(`${offNode.apiUrl}/metrics`)).status;

      const summary = Object.fromEntries(
        [...rounds].map(([name, rs]) => [
          name,
          {
            rps: Math.round(mean(rs.map((x) => x.rps))),
            p50: round2(mean(rs.map((x) => x.p50))),
            p99: round2(mean(rs.map((x) => x.p99))),
            cpuUsPerRequest: Math.round(mean(rs.map((x) => x.cpuUsPerRequest))),
          },
        ]),
      );
      const off = summary.off!;
      const metrics: Metric[] = [];
      for (const [name, s] of Object.entries(summary)) {
        metrics.push({ name: `${name} req/s`, value: s.rps, unit: 'req/s' });
        metrics.push({ name: `${name} p99`, value: s.p99, unit: 'ms' });
        metrics.push({ name: `${name} CPU per request`, value: s.cpuUsPerRequest, unit: 'µs' });
        if (name !== 'off')
          metrics.push({
            name: `${name}: throughput cost vs off`,
            value: round1(((off.rps - s.rps) / off.rps) * 100),
            unit: '%',
          });
      }
      return {
        metrics,
        details: { summary, rounds: Object.fromEntries(rounds), otlpBytes: sink.bytes() },
        notes: [
          `GET /hello, ${config.connections} connections, ${config.warmupS} s warm-up + ${config.durationS} s measured per round, ${config.rounds} round(s) per configuration, configurations alternating; figures are the mean of the rounds.`,
          `metrics node counted ${served} answered requests in kylix_requests_total; the off node's /metrics answered ${offStatus}; the OTLP sink received ${sink.bytes()} bytes of spans.`,
        ],
      };
    } finally {
      await Promise.all(nodes.map((n) => n.node.stop()));
      sink.server.close();
    }
  },
};
