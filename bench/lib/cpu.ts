/**
 * Where the CPU went during a measured run, read from /proc: how busy each core was (to see whether
 * the server or the load generator was the bottleneck) and the CPU time of each process of the
 * server under test (to see, for Kylix, the gateway's share against the sandbox's).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processTree } from './memory.js';

/** Clock ticks per second of /proc's CPU times. */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A reading to diff against a later one. */
export interface CpuSnapshot {
  cores: Map<string, { busy: number; total: number; steal: number }>;
  processes: Map<number, { command: string; ticks: number }>;
}

function commandOf(pid: number): string {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // "node --flags script.js …" → the script's base name tells gateway from sandbox.
    const script = args.find((a) => /\.(js|ts|mjs)$/.test(a)) ?? args[0] ?? '?';
    return script.split('/').slice(-2).join('/');
  } catch {
    return '?';
  }
}

function ticksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command.
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/** Reads per-core counters and the CPU time of `root`'s process tree. */
export function cpuSnapshot(root?: number): CpuSnapshot {
  const cores = new Map<string, { busy: number; total: number; steal: number }>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.split(/\s+/).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    cores.set(m[1]!, { busy: total - idle, total, steal: v[7] ?? 0 });
  }
  const processes = new Map<number, { command: string; ticks: number }>();
  if (root !== undefined) {
    for (const pid of processTree(root)) {
      const ticks = ticksOf(pid);
      if (ticks !== undefined) processes.set(pid, { command: commandOf(pid), ticks });
    }
  }
  return { cores, processes };
}

/** What happened between two snapshots. */
export interface CpuUsage {
  /** Busy percentage of each core (time the hypervisor stole counts as busy). */
  coreBusyPct: Record<string, number>;
  /**
   * Percentage of each core's time the hypervisor gave to other machines (steal). On a shared VM
   * it comes and goes, and a run with steal is slower for every server in it: rounds with 3–17 %
   * steal served a third fewer requests at a third more CPU per request than rounds with none.
   */
  coreStealPct: Record<string, number>;
  /** CPU seconds of each process of the tree, keyed "pid command". */
  processCpuS: Record<string, number>;
}

/** The difference between two snapshots. */
export function cpuUsage(before: CpuSnapshot, after: CpuSnapshot): CpuUsage {
  const coreBusyPct: Record<string, number> = {};
  const coreStealPct: Record<string, number> = {};
  for (const [core, a] of after.cores) {
    const b = before.cores.get(core);
    if (!b || a.total === b.total) continue;
    coreBusyPct[core] = Math.round((100 * (a.busy - b.busy)) / (a.total - b.total));
    coreStealPct[core] = Math.round((100 * (a.steal - b.steal)) / (a.total - b.total));
  }
  const processCpuS: Record<string, number> = {};
  for (const [pid, a] of after.processes) {
    const b = before.processes.get(pid)?.ticks ?? 0;
    processCpuS[`${pid} ${a.command}`] = Math.round(((a.ticks - b) / TICKS) * 100) / 100;
  }
  return { coreBusyPct, coreStealPct, processCpuS };
}
