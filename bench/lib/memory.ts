/**
 * Memory of a process tree, read from /proc: RSS (what the issue asks for; shared pages counted once
 * per process) and PSS (shared pages split between the processes that share them).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Memory of one process tree, in MiB. */
export interface TreeMemory {
  pids: number[];
  rssMiB: number;
  pssMiB: number;
  /** Per process: pid, command and RSS/PSS in MiB. */
  processes: { pid: number; command: string; rssMiB: number; pssMiB: number }[];
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command may contain spaces and parentheses; fields after the last ")" are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return undefined;
  }
}

function kib(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** `root` and every process descended from it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const ppid = parentOf(pid);
    if (ppid === undefined) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** RSS and PSS of `root` and its descendants; processes that vanish meanwhile count as 0. */
export function treeMemory(root: number): TreeMemory {
  const processes: TreeMemory['processes'] = [];
  for (const pid of processTree(root)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      let pss = 0;
      try {
        pss = kib(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
      } catch {
        // Older kernels have no smaps_rollup; PSS is then reported as 0.
      }
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .slice(0, 3)
        .join(' ');
      processes.push({ pid, command, rssMiB: kib(status, 'VmRSS') / 1024, pssMiB: pss / 1024 });
    } catch {
      // Exited between the listing and the read.
    }
  }
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    pids: processes.map((p) => p.pid),
    rssMiB: round(processes.reduce((a, p) => a + p.rssMiB, 0)),
    pssMiB: round(processes.reduce((a, p) => a + p.pssMiB, 0)),
    processes: processes.map((p) => ({ ...p, rssMiB: round(p.rssMiB), pssMiB: round(p.pssMiB) })),
  };
}

/** MemAvailable from /proc/meminfo, in GiB: what can still be allocated without swapping. */
export function memAvailableGiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 ** 2 : Number.POSITIVE_INFINITY;
}
