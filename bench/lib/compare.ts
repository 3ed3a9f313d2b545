/**
 * A throughput comparison: start every server (Kylix, raw Node.js, workerd) once, then load them in
 * turn, round after round, so that drift in the machine hits all of them alike. Each round is a
 * warm-up run (discarded) followed by a measured run of autocannon in its own process. On a shared
 * VM the hypervisor sometimes gives a core's time to other machines (steal); a measured run with
 * more than STEAL_PCT of it is run again, at most STEAL_RETRIES times, and the report says so.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CpuUsage, cpuSnapshot, cpuUsage } from './cpu.js';
import { type LoadResult, loadTest } from './load.js';
import type { Metric, ScenarioContext, ScenarioResult } from './scenario.js';
import {
  type ServerUnderTest,
  startKylixServer,
  startRawServer,
  startWorkerdServer,
  type Workload,
  workerdUsable,
} from './servers.js';

/** The three servers of a comparison, in the order they are loaded in round 1. */
export const TARGETS = ['kylix', 'raw', 'workerd'] as const;

/** How the raw baseline is described in the report for this workload. */
export interface CompareOptions {
  workload: Workload;
  rawLabel: string;
  /** Targets for Kylix from the issue. */
  goals?: { vsRaw?: number; vsWorkerd?: number; p99Ms?: number; cpuUsPerRequest?: number };
}

/** One measured round: the load generator's figures and where the CPU went meanwhile. */
export interface Round extends LoadResult {
  cpu: CpuUsage;
}

/** Summary of one server over all rounds: the mean of the rounds' figures. */
export interface TargetSummary {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time per request of each of the server's processes, in µs (mean of the rounds). */
  cpuUsPerRequest: Record<string, number>;
  /** Busy percentage of each core during the measured runs (mean of the rounds). */
  coreBusyPct: Record<string, number>;
  coreStealPct: Record<string, number>;
  rounds: Round[];
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round2 = (n: number) => Math.round(n * 100) / 100;

async function startTarget(name: string, ctx: ScenarioContext, w: Workload): Promise<ServerUnderTest> {
  const cpus = ctx.cores.server;
  if (name === 'kylix') return startKylixServer(w, cpus);
  if (name === 'raw') return startRawServer(w, cpus);
  const dir = join(ctx.tmpDir, 'workerd');
  mkdirSync(dir, { recursive: true });
  return startWorkerdServer(w, dir, cpus);
}

/** Steal (percent of a core's time) above which a round is measured again, and how many times at most. */
const STEAL_PCT = 3;
const STEAL_RETRIES = 2;

/** Runs the comparison; see the file comment. */
export async function compareThroughput(
  ctx: ScenarioContext,
  options: CompareOptions,
): Promise<ScenarioResult> {
  const { config } = ctx;
  const notes: string[] = [];
  const wanted = TARGETS.filter((t) => config.targets.length === 0 || config.targets.includes(t));
  const servers: ServerUnderTest[] = [];
  const skipped: Record<string, string> = {};
  try {
    for (const name of wanted) {
      if (name === 'workerd') {
        const usable = await workerdUsable();
        if (!usable.ok) {
          skipped.workerd = usable.reason;
          notes.push(`workerd skipped: its binary cannot run here (${usable.reason}).`);
          continue;
        }
        notes.push(`workerd: ${usable.version}.`);
      }
      ctx.log(`starting ${name}`);
      try {
        servers.push(await startTarget(name, ctx, options.workload));
      } catch (err) {
        if (name !== 'workerd') throw err;
        skipped.workerd = (err as Error).message.split('\n').slice(0, 6).join(' ');
        notes.push(`workerd skipped: it did not start (${skipped.workerd}).`);
      }
    }

    const results = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
    for (let r = 0; r < config.rounds; r++) {
      // Rotate the order so no server is always first after an idle pause.
      const order = servers.map((_, i) => servers[(i + r) % servers.length]!);
      for (const s of order) {
        const load = { connections: config.connections, cpus: ctx.cores.client };
        if (config.warmupS > 0) await loadTest(s.url, { ...load, durationS: config.warmupS });
        let result: Round;
        for (let attempt = 0; ; attempt++) {
          const before = cpuSnapshot(s.pid);
          const measured = await loadTest(s.url, { ...load, durationS: config.durationS });
          result = { ...measured, cpu: cpuUsage(before, cpuSnapshot(s.pid)) };
          // A round the hypervisor took time from is measured again (see coreStealPct), at most
          // STEAL_RETRIES times, so that one server is not compared in a noisy round with another in a quiet one.
          const stolen = Math.max(0, ...Object.values(result.cpu.coreStealPct));
          if (stolen <= STEAL_PCT || attempt >= STEAL_RETRIES) break;
          ctx.log(
            `round ${r + 1}/${config.rounds} ${s.name.padEnd(8)} ${result.rps} req/s, ${stolen}% steal: again`,
          );
          notes.push(`${s.name} round ${r + 1}: measured again after ${stolen}% hypervisor steal.`);
        }
        ctx.log(
          `round ${r + 1}/${config.rounds} ${s.name.padEnd(8)} ${result.rps} req/s  p50 ${result.p50} ms  p99 ${result.p99} ms  steal ${steal(result.cpu.coreStealPct)}`,
        );
        if (result.non2xx || result.errors || result.timeouts) {
          notes.push(
            `${s.name} round ${r + 1}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts.`,
          );
        }
        results.get(s.name)!.push(result);
      }
    }

    const summary: Record<string, TargetSummary> = {};
    for (const [name, rounds] of results) {
      summary[name] = {
        rps: Math.round(avg(rounds.map((x) => x.rps))),
        p50: round2(avg(rounds.map((x) => x.p50))),
        p99: round2(avg(rounds.map((x) => x.p99))),
        cpuUsPerRequest: meanOf(rounds.map(cpuPerRequest)),
        coreBusyPct: meanOf(rounds.map((x) => x.cpu.coreBusyPct)),
        coreStealPct: meanOf(rounds.map((x) => x.cpu.coreStealPct)),
        rounds,
      };
    }
    notes.push(...cpuNotes(summary));
    return {
      metrics: metricsOf(summary, options),
      details: { url: options.workload.path, summary, skipped },
      notes,
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** µs of CPU per answered request for each process ("gateway" and "sandbox" named by their script). */
function cpuPerRequest(r: Round): Record<string, number> {
  const requests = r.ok + r.non2xx;
  const out: Record<string, number> = {};
  for (const [key, seconds] of Object.entries(r.cpu.processCpuS)) {
    const command = key.slice(key.indexOf(' ') + 1);
    out[command] = (out[command] ?? 0) + (requests > 0 ? (seconds * 1e6) / requests : 0);
  }
  return out;
}

function meanOf(records: Record<string, number>[]): Record<string, number> {
  const sums: Record<string, number[]> = {};
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      sums[k] = [...(sums[k] ?? []), v];
    }
  }
  return Object.fromEntries(Object.entries(sums).map(([k, vs]) => [k, Math.round(avg(vs))]));
}

/** "cpu0 3%, cpu1 0%": the time the hypervisor gave to other machines, per core. */
function steal(pct: Record<string, number>): string {
  return (
    Object.entries(pct)
      .map(([core, p]) => `${core} ${p}%`)
      .join(', ') || 'n/a'
  );
}

function cpuNotes(summary: Record<string, TargetSummary>): string[] {
  return Object.entries(summary).map(([name, s]) => {
    const procs = Object.entries(s.cpuUsPerRequest)
      .filter(([, us]) => us > 0)
      .map(([cmd, us]) => `${cmd} ${us} µs`)
      .join(', ');
    const cores = Object.entries(s.coreBusyPct)
      .map(([core, pct]) => `${core} ${pct}%`)
      .join(', ');
    return `${name}: CPU per request ${procs || 'n/a'}; cores busy during the measured runs: ${cores}; hypervisor steal: ${steal(s.coreStealPct)}.`;
  });
}

function metricsOf(summary: Record<string, TargetSummary>, options: CompareOptions): Metric[] {
  const metrics: Metric[] = [];
  const goals = options.goals ?? {};
  const label = (name: string) => (name === 'raw' ? options.rawLabel : name);
  for (const [name, s] of Object.entries(summary)) {
    metrics.push({ name: `${label(name)} req/s`, value: s.rps, unit: 'req/s' });
    metrics.push({ name: `${label(name)} p50`, value: s.p50, unit: 'ms' });
    metrics.push({
      name: `${label(name)} p99`,
      value: s.p99,
      unit: 'ms',
      ...(name === 'kylix' && goals.p99Ms !== undefined
        ? { target: { op: '<=' as const, value: goals.p99Ms } }
        : {}),
    });
  }
  const kylix = summary.kylix;
  if (kylix) {
    // Every Kylix process together (supervisor and sandbox processes): what one request costs.
    const total = Object.values(kylix.cpuUsPerRequest).reduce((a, b) => a + b, 0);
    metrics.push({
      name: 'kylix CPU per request, all processes',
      value: total,
      unit: 'µs',
      ...(goals.cpuUsPerRequest !== undefined
        ? { target: { op: '<=' as const, value: goals.cpuUsPerRequest } }
        : {}),
    });
  }
  if (kylix && summary.raw) {
    metrics.push({
      name: `ratio Kylix/${options.rawLabel} req/s`,
      value: round2(kylix.rps / summary.raw.rps),
      unit: '×',
      ...(goals.vsRaw ? { target: { op: '>=' as const, value: goals.vsRaw } } : {}),
    });
  }
  if (kylix && summary.workerd) {
    metrics.push({
      name: 'ratio Kylix/workerd req/s',
      value: round2(kylix.rps / summary.workerd.rps),
      unit: '×',
      ...(goals.vsWorkerd ? { target: { op: '>=' as const, value: goals.vsWorkerd } } : {}),
    });
  }
  return metrics;
}
