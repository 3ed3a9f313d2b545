/**
 * CPU and memory of a sandbox process, read by the supervisor from /proc when Prometheus scrapes
 * (never per request, and never from what the untrusted sandbox says about itself). The process the
 * supervisor spawned may be bubblewrap or a shell that became it, with Node a child in its own PID
 * namespace; so the figures are those of the whole process tree under the spawned pid, found through
 * /proc/PID/task/TID/children. Off Linux (no /proc) every read gives undefined.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux architecture Node runs on. */
const TICKS_PER_S = 100;
/** The page size statm counts in (4 KiB on x86-64 and most arm64 kernels). */
const PAGE_BYTES = 4096;
/** Processes in one tree at most (a sandbox holds a handful; this bounds a hostile fork bomb's cost). */
const MAX_TREE = 64;

/** What one process tree uses. */
export interface ProcessUsage {
  /** User plus system CPU time since each process started (seconds). */
  cpuSeconds: number;
  /** Resident memory now (bytes). */
  rssBytes: number;
}

/** utime + stime of one process in seconds, from /proc/PID/stat (fields 14 and 15, after the comm). */
function cpuOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The comm field may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

/** Resident bytes of one process, from /proc/PID/statm (its second field, in pages). */
function rssOf(pid: number): number | undefined {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return Number.isFinite(pages) ? pages * PAGE_BYTES : undefined;
  } catch {
    return undefined;
  }
}

/** The direct children of a process (over all its threads). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' '))
        if (c.trim()) out.push(Number(c));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** CPU and memory of `pid` and its descendants, or undefined when the process is gone (or no /proc). */
export function processTreeUsage(pid: number): ProcessUsage | undefined {
  const rootCpu = cpuOf(pid);
  if (rootCpu === undefined) return undefined;
  const usage: ProcessUsage = { cpuSeconds: rootCpu, rssBytes: rssOf(pid) ?? 0 };
  const queue = childrenOf(pid);
  const seen = new Set([pid]);
  while (queue.length > 0 && seen.size < MAX_TREE) {
    const p = queue.shift() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    usage.cpuSeconds += cpuOf(p) ?? 0;
    usage.rssBytes += rssOf(p) ?? 0;
    queue.push(...childrenOf(p));
  }
  return usage;
}
