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
 * Each core's counters by core number: the `cpuN` lines of /proc/stat on Linux (os.cpus() reads
 * those too, and parses all of /proc/cpuinfo besides, twice a second here), else os.cpus().
 */
function coreTimes(): [number, CoreTimes][] {
  try {
    const out: [number, CoreTimes][] = [];
    for (const line of readFileSync('/proc/stat', 'latin1').split('\n')) {
      const m = /^cpu(\d+) (\d+) (\d+) (\d+) (\d+) \d+ (\d+)/.exec(line);
      if (m) out.push([Number(m[1]), { user: +m[2]!, nice: +m[3]!, sys: +m[4]!, idle: +m[5]!, irq: +m[6]! }]);
    }
    if (out.length > 0) return out;
  } catch {
    // Not Linux, or no /proc: os.cpus() below.
  }
  return cpus().map((c, i) => [i, c.times]);
}

/** See the file comment. */
export class CpuGauge {
  /** Cores this process may use. */
  readonly cores = availableParallelism();
  /** Busy share (0–1) of those cores over the last interval; 0 before two samples. */
  busy = 0;
  private readonly allowed = allowedCores();
  private last?: { busy: number; total: number };

  /** Reads the counters; call on a timer. */
  sample(): void {
    let busy = 0;
    let total = 0;
    for (const [i, t] of coreTimes()) {
      if (this.allowed && !this.allowed.has(i)) continue;
      const all = t.user + t.nice + t.sys + t.idle + t.irq;
      total += all;
      busy += all - t.idle;
    }
    if (this.last && total > this.last.total) this.busy = (busy - this.last.busy) / (total - this.last.total);
    this.last = { busy, total };
  }

  /** Whether the usable cores are (nearly) all busy. */
  saturated(): boolean {
    return this.busy >= SATURATED;
  }
}
