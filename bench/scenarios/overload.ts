/**
 * Scenario 9, overload: the hello module loaded past the node's capacity. First its peak (2xx/s at
 * the usual 64 connections), then a burst of 1,000 connections (closed loop, about 15× the
 * connections the peak needs) and an open-loop burst at twice the peak rate: how much of the peak
 * is still served as 2xx, how slow those are, how many are refused (429/503) and how fast, and how
 * long after the burst 64 connections get the peak again. Once with the default limits, once with
 * spec.limits.maxConcurrency: 100.
 */
import { join } from 'node:path';
import { cpuSnapshot, cpuUsage } from '../lib/cpu.js';
import { ROOT, startKylix } from '../lib/kylix.js';
import { waitForBody } from '../lib/load.js';
import type { Metric, Scenario } from '../lib/scenario.js';
import { type StatusLoadResult, statusLoad } from '../lib/status-load.js';

const FIXTURES = join(ROOT, 'bench', 'fixtures', 'overload');
/** Connections of the closed-loop burst (env BENCH_OVERLOAD_CONNECTIONS). */
const BURST_CONNECTIONS = Number(process.env.BENCH_OVERLOAD_CONNECTIONS) || 1000;
/** Recovered: a whole second at this share of the peak. */
const RECOVERED = 0.9;
/** Seconds the recovery is watched for at most. */
const RECOVERY_LIMIT_S = 30;

const round1 = (n: number) => Math.round(n * 10) / 10;
const pct = (part: number, whole: number) => (whole > 0 ? round1((100 * part) / whole) : 0);

/** Asks with fetch during a burst until one refusal comes back; its Retry-After header. */
async function probeRetryAfter(url: string, until: () => boolean): Promise<string | undefined> {
  while (!until()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.status === 429 || res.status === 503)
        return `${res.status} retry-after: ${res.headers.get('retry-after')}`;
    } catch {
      // a timeout under overload: ask again
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** See the file comment. */
export const overload: Scenario = {
  id: 9,
  name: 'overload',
  title: 'Overload: refuse past capacity, keep the peak',
  async run(ctx) {
    const { config } = ctx;
    const metrics: Metric[] = [];
    const notes: string[] = [];
    const details: Record<string, unknown> = {};
    const node = await startKylix({ manifests: [FIXTURES], cpus: ctx.cores.server });
    try {
      for (const [label, path] of [
        ['default limits', '/hello'],
        ['maxConcurrency 100', '/capped'],
      ] as const) {
        const url = `${node.gatewayUrl}${path}`;
        await waitForBody(url, 'Hello, world!\n', 30_000);
        const load = (connections: number, durationS: number, extra = {}) =>
          statusLoad(url, { connections, durationS, ...extra });
        /** Runs `f` and adds the CPU seconds the node's processes used meanwhile. */
        const withCpu = async (f: () => Promise<StatusLoadResult>) => {
          const before = cpuSnapshot(node.child.pid);
          const r = await f();
          const used = Object.values(cpuUsage(before, cpuSnapshot(node.child.pid)).processCpuS);
          return { ...r, cpuS: used.reduce((a, b) => a + b, 0) };
        };
        if (config.warmupS > 0) await load(config.connections, config.warmupS);
        const peak = await withCpu(() => load(config.connections, config.durationS));
        ctx.log(
          `${label}: peak ${peak.okPerS} 2xx/s at ${config.connections} connections, p99 ${peak.okLatency.p99} ms`,
        );

        let bursting = true;
        const probe = probeRetryAfter(url, () => !bursting);
        const burst = await withCpu(() => load(BURST_CONNECTIONS, config.durationS));
        bursting = false;
        const retryAfter = await probe;
        ctx.log(
          `${label}: ${BURST_CONNECTIONS} connections: ${burst.okPerS} 2xx/s (${pct(burst.okPerS, peak.okPerS)} % of peak), p99 ${burst.okLatency.p99} ms; refused ${burst.refused429} × 429 + ${burst.refused503} × 503, p99 ${burst.refusedLatency.p99} ms`,
        );
        const recovery = await load(config.connections, RECOVERY_LIMIT_S, {
          stopWhen: (s: number[]) => (s.at(-1) ?? 0) >= RECOVERED * peak.okPerS,
        });
        const recovered = recovery.perSecond2xx.findIndex((n) => n >= RECOVERED * peak.okPerS);
        const recoveryS = recovered === -1 ? Number.POSITIVE_INFINITY : recovered + 1;
        ctx.log(`${label}: after the burst, per second: ${recovery.perSecond2xx.join(', ')}`);

        const open = await load(BURST_CONNECTIONS, config.durationS, { rate: 2 * peak.okPerS });
        ctx.log(
          `${label}: open loop at ${2 * peak.okPerS} req/s: ${open.okPerS} 2xx/s (${pct(open.okPerS, peak.okPerS)} % of peak), p99 ${open.okLatency.p99} ms`,
        );

        // 2xx per CPU-second of the node's processes: what the node gets done with the CPU it had,
        // a figure a busy machine (other work on the server's core) skews far less than req/s.
        const perCpuS = (r: StatusLoadResult & { cpuS: number }) => (r.cpuS > 0 ? r.ok / r.cpuS : 0);
        const refused = (r: StatusLoadResult) => r.refused429 + r.refused503;
        const answered = (r: StatusLoadResult) => r.ok + refused(r) + r.other;
        metrics.push(
          { name: `${label}: peak 2xx/s (${config.connections} conn)`, value: peak.okPerS, unit: 'req/s' },
          { name: `${label}: peak p99`, value: peak.okLatency.p99, unit: 'ms' },
          {
            name: `${label}: kept at ${BURST_CONNECTIONS} conn (2xx/s ÷ peak)`,
            value: pct(burst.okPerS, peak.okPerS),
            unit: '%',
            target: { op: '>=', value: 80 },
          },
          {
            name: `${label}: kept at ${BURST_CONNECTIONS} conn, per node CPU-second`,
            value: pct(perCpuS(burst), perCpuS(peak)),
            unit: '%',
            target: { op: '>=', value: 80 },
          },
          {
            name: `${label}: p99 of 2xx at ${BURST_CONNECTIONS} conn`,
            value: burst.okLatency.p99,
            unit: 'ms',
          },
          {
            name: `${label}: refused at ${BURST_CONNECTIONS} conn (429+503 ÷ answers)`,
            value: pct(refused(burst), answered(burst)),
            unit: '%',
          },
          {
            name: `${label}: refusal p99 ≤ 2xx p99`,
            value: burst.refusedLatency.p99,
            unit: 'ms',
            ...(Number.isFinite(burst.okLatency.p99)
              ? { target: { op: '<=' as const, value: burst.okLatency.p99 } }
              : {}),
          },
          {
            name: `${label}: back to ${RECOVERED * 100} % of peak after the burst`,
            value: recoveryS,
            unit: 's',
            target: { op: '<=', value: 3 },
          },
          {
            name: `${label}: kept at 2× peak rate, open loop`,
            value: pct(open.okPerS, peak.okPerS),
            unit: '%',
            target: { op: '>=', value: 80 },
          },
          { name: `${label}: p99 of 2xx at 2× peak rate`, value: open.okLatency.p99, unit: 'ms' },
        );
        notes.push(
          `${label}: node CPU ${round1(peak.cpuS)} s for ${peak.ok} 2xx at peak, ${round1(burst.cpuS)} s for ${burst.ok} 2xx + ${refused(burst)} refusals in the burst; at ${BURST_CONNECTIONS} connections ${burst.refused429} × 429, ${burst.refused503} × 503, ${burst.other} other, ${burst.errors} errors, ${burst.timeouts} timeouts; refusal p50 ${burst.refusedLatency.p50} ms, 2xx p50 ${burst.okLatency.p50} ms; a refusal during the burst: ${retryAfter ?? 'none seen by the probe'}; open loop: ${open.refused429} × 429, ${open.refused503} × 503, ${open.errors} errors, ${open.timeouts} timeouts.`,
        );
        details[label] = { peak, burst, recovery, open, retryAfter };
      }
      notes.unshift(
        `Peak: ${config.connections} connections, ${config.warmupS} s warm-up + ${config.durationS} s; burst: ${BURST_CONNECTIONS} connections for ${config.durationS} s (closed loop: a refused connection asks again at once); recovery: ${config.connections} connections right after, in 1 s steps, until a second reaches ${RECOVERED * 100} % of peak; open loop: ${BURST_CONNECTIONS} connections sending 2 × peak req/s in all. Latencies include the time a request waits in the socket before the gateway reads it: in a closed loop the mean over all answers is connections ÷ answers per second (Little's law), so refusals are judged against the 2xx latency of the same run.`,
      );
      return { metrics, details, notes };
    } finally {
      await node.stop();
    }
  },
};
