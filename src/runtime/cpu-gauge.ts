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
    cpus().forEach((c, i) => {
      if (this.allowed && !this.allowed.has(i)) return;
      const t = c.times;
      const all = t.user + t.nice + t.sys + t.idle + t.irq;
      total += all;
      busy += all - t.idle;
    });
    if (this.last && total > this.last.total) this.busy = (busy - this.last.busy) / (total - this.last.total);
    this.last = { busy, total };
  }

  /** Whether the usable cores are (nearly) all busy. */
  saturated(): boolean {
    return this.busy >= SATURATED;
  }
}
