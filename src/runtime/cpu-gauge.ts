/**
 * The node's CPU as scaling sees it: how many cores this process may run on (its affinity, as
 * taskset or a cgroup cpuset sets it) and how busy those cores were over the last interval, from
 * the kernel's per-core counters. Sampled on the runtime's existing timer, never per request.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

/** Busy share of the usable cores at which the node counts as saturated. */
export const SATURATED = 0.9;

/** The cores in this process's affinity mask (Linux), or undefined when unknown (all cores). */
function allowedCores(): Set<number> | undefined {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return undefined;
    const out = new Set<number>();
    for (const part of m[1]!.trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) out.add(c);
    }
    return out.size > 0 ? out : undefined;
  } catch {
    return undefined;
  }
}

/** One core's time counters (any unit: only their ratios are used). */
interface CoreTimes {
  user: number;
  nice: number;
  sys: number;
  idle: number;
  irq: number;
}

/**
 * Each core's counters by core number from the text of /proc/stat: its `cpuN` lines (user nice
 * system idle iowait irq …, in clock ticks; the same fields os.cpus() reports). The all-cores
 * `cpu` line and everything else are skipped; numbering may have gaps (offline cores).
 */
export function parseProcStat(text: string): Map<number, CoreTimes> {
  const out = new Map<number, CoreTimes>();
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+) (\d+) (\d+) (\d+) (\d+) \d+ (\d+)/.exec(line);
    if (m) out.set(Number(m[1]), { user: +m[2]!, nice: +m[3]!, sys: +m[4]!, idle: +m[5]!, irq: +m[6]! });
  }
  return out;
}

/**
 * The counters, and which source they came from: /proc/stat on Linux (os.cpus() reads it too, and
 * parses all of /proc/cpuinfo besides, on every call), else os.cpus() (in ms, not ticks: two
 * samples from different sources are never compared).
 */
function coreTimes(): { source: 'proc' | 'os'; cores: Map<number, CoreTimes> } {
  try {
    const cores = parseProcStat(readFileSync('/proc/stat', 'latin1'));
    if (cores.size > 0) return { source: 'proc', cores };
  } catch {
    // Not Linux, no /proc, or no file descriptor to spare: os.cpus() below.
  }
  return { source: 'os', cores: new Map(cpus().map((c, i) => [i, c.times])) };
}

/** See the file comment. */
export class CpuGauge {
  /** Cores this process may use. */
  readonly cores = availableParallelism();
  /** Busy share (0–1) of those cores over the last interval; 0 before two samples. */
  busy = 0;
  private readonly allowed = allowedCores();
  private last?: { source: 'proc' | 'os'; busy: number; total: number };

  /** Reads the counters; call on a timer. */
  sample(): void {
    const { source, cores } = coreTimes();
    let busy = 0;
    let total = 0;
    for (const [i, t] of cores) {
      if (this.allowed && !this.allowed.has(i)) continue;
      const all = t.user + t.nice + t.sys + t.idle + t.irq;
      total += all;
      busy += all - t.idle;
    }
    // Nothing read (no counters for the usable cores): keep the last figure and the last sample.
    if (total === 0) return;
    const last = this.last?.source === source ? this.last : undefined;
    if (last && total > last.total) this.busy = (busy - last.busy) / (total - last.total);
    this.last = { source, busy, total };
  }

  /** Whether the usable cores are (nearly) all busy. */
  saturated(): boolean {
    return this.busy >= SATURATED;
  }
}
