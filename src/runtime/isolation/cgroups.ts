/**
 * cgroup limits for sandbox processes: memory (the only cap on ArrayBuffers and Wasm memory, which a
 * worker's heap limit does not see), pids and CPU. Works with cgroup v2, and with the v1 memory,
 * pids and cpu hierarchies that hybrid hosts still mount. Each sandbox process gets its own group
 * below `kylix-<supervisor pid>` in the supervisor's own group.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

/** Limits of one sandbox process. */
export interface CgroupLimits {
  memoryBytes: number;
  pids: number;
  /** CPU cores the process may use at most (cfs quota / cpu.max). */
  cpus: number;
}

/** Which cgroup flavour is usable, where, and why not when it is not. */
export interface CgroupSupport {
  ok: boolean;
  version?: 1 | 2;
  /** Controllers Kylix can set: memory, pids, cpu. */
  controllers: string[];
  reason: string;
}

/** The cgroup of one sandbox process. */
export interface SandboxCgroup {
  /** The cgroup.procs files a new process must write its pid to (one per v1 hierarchy). */
  procsFiles: string[];
  setLimits(limits: CgroupLimits): void;
  /**
   * The group's share of a busy CPU: 'background' for a process only warming workers ahead of need,
   * so that it yields to processes serving requests; 'normal' once it serves.
   */
  setCpuPriority(priority: 'normal' | 'background'): void;
  /** True when the kernel OOM-killed a process of this group. */
  oomKilled(): boolean;
  /** The most memory the group used, in bytes (when the kernel reports it). */
  peakBytes(): number | undefined;
  /** Removes the group; its processes must be gone. */
  remove(): void;
}

const read = (p: string): string => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
const tryWrite = (p: string, v: string): boolean => {
  try {
    writeFileSync(p, v);
    return true;
  } catch {
    return false;
  }
};

/** "controllers → path" of this process, from /proc/self/cgroup. */
function ownGroups(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of read('/proc/self/cgroup').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, list = '', path = '/'] = m;
    if (list === '') map.set('', path);
    else for (const c of list.split(',')) map.set(c, path);
  }
  return map;
}

/** Removes groups left by supervisors that died without cleaning up (kill -9): their processes are gone. */
function removeStale(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const pid = Number(/^kylix-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue;
    } catch {}
    const parent = join(dir, name);
    try {
      for (const child of readdirSync(parent, { withFileTypes: true }))
        if (child.isDirectory()) rmdirSync(join(parent, child.name));
      rmdirSync(parent);
    } catch {}
  }
}

/** Sets up the parent group of this supervisor's sandboxes; one per process. */
export class CgroupManager {
  readonly support: CgroupSupport;
  /** v2: the parent dir. v1: controller → parent dir. */
  private readonly parents = new Map<string, string>();
  private counter = 0;

  constructor(mode: 'auto' | 'off' = 'auto') {
    this.support =
      mode === 'off'
        ? { ok: false, controllers: [], reason: 'turned off (KYLIX_SANDBOX_CGROUPS=off)' }
        : this.setUp();
  }

  private setUp(): CgroupSupport {
    if (process.platform !== 'linux')
      return { ok: false, controllers: [], reason: `${process.platform} has no cgroups` };
    const own = ownGroups();
    const name = `kylix-${process.pid}`;
    // cgroup v2, unified or the hybrid hierarchy at /sys/fs/cgroup/unified.
    for (const root of [ROOT, join(ROOT, 'unified')]) {
      if (!existsSync(join(root, 'cgroup.controllers'))) continue;
      const base = join(root, own.get('') ?? '/');
      const available = read(join(base, 'cgroup.controllers')).trim().split(/\s+/);
      const wanted = ['memory', 'pids', 'cpu'].filter((c) => available.includes(c));
      if (!wanted.includes('memory')) continue;
      try {
        removeStale(base);
        const parent = join(base, name);
        mkdirSync(parent, { recursive: true });
        const enable = (dir: string) =>
          writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
        enable(base);
        enable(parent);
        this.parents.set('v2', parent);
        return {
          ok: true,
          version: 2,
          controllers: wanted,
          reason: `cgroup v2 at ${parent}: ${wanted.join(', ')}`,
        };
      } catch (err) {
        return {
          ok: false,
          controllers: [],
          reason: `cgroup v2 at ${base} is not delegated to Kylix (${(err as NodeJS.ErrnoException).code}); run it in a delegated cgroup (systemd Delegate=yes) or as root in its own container`,
        };
      }
    }
    // cgroup v1: one hierarchy per controller.
    const got: string[] = [];
    let failure = '';
    for (const c of ['memory', 'pids', 'cpu']) {
      const mount = join(ROOT, c);
      if (!existsSync(join(mount, 'cgroup.procs'))) continue;
      const parent = join(mount, own.get(c) ?? '/', name);
      removeStale(join(mount, own.get(c) ?? '/'));
      try {
        mkdirSync(parent, { recursive: true });
        this.parents.set(c, parent);
        got.push(c);
      } catch (err) {
        failure ||= `${mount} is not writable (${(err as NodeJS.ErrnoException).code})`;
      }
    }
    if (got.includes('memory'))
      return { ok: true, version: 1, controllers: got, reason: `cgroup v1: ${got.join(', ')}` };
    return {
      ok: false,
      controllers: [],
      reason: failure
        ? `${failure}; run Kylix as root or in a delegated cgroup`
        : 'no writable cgroup memory controller (cgroup v2 or v1) is mounted at /sys/fs/cgroup',
    };
  }

  /** A new group for one sandbox process, or undefined when cgroups are not available. */
  create(label: string): SandboxCgroup | undefined {
    if (!this.support.ok) return undefined;
    const leaf = `${label.replace(/[^a-zA-Z0-9_.-]/g, '_').slice(0, 80)}-${++this.counter}`;
    const dirs = new Map<string, string>();
    for (const [c, parent] of this.parents) {
      const dir = join(parent, leaf);
      mkdirSync(dir, { recursive: true });
      dirs.set(c, dir);
    }
    const v2 = dirs.get('v2');
    const file = (controller: string, name: string) =>
      join(v2 ?? dirs.get(controller) ?? '/nonexistent', name);
    return {
      procsFiles: [...dirs.values()].map((d) => join(d, 'cgroup.procs')),
      setLimits(l) {
        const mem = String(Math.floor(l.memoryBytes));
        const period = 100_000;
        const quota = String(Math.max(1000, Math.round(l.cpus * period)));
        if (v2) {
          tryWrite(file('memory', 'memory.max'), mem);
          tryWrite(file('memory', 'memory.swap.max'), '0');
          tryWrite(file('pids', 'pids.max'), String(l.pids));
          tryWrite(file('cpu', 'cpu.max'), `${quota} ${period}`);
        } else {
          // v1 wants memory <= memory+swap at all times: raise memsw first, lower it last.
          tryWrite(file('memory', 'memory.memsw.limit_in_bytes'), mem);
          tryWrite(file('memory', 'memory.limit_in_bytes'), mem);
          tryWrite(file('memory', 'memory.memsw.limit_in_bytes'), mem);
          tryWrite(file('pids', 'pids.max'), String(l.pids));
          tryWrite(file('cpu', 'cpu.cfs_period_us'), String(period));
          tryWrite(file('cpu', 'cpu.cfs_quota_us'), quota);
        }
      },
      setCpuPriority(priority) {
        const background = priority === 'background';
        if (v2) tryWrite(file('cpu', 'cpu.weight'), background ? '1' : '100');
        else tryWrite(file('cpu', 'cpu.shares'), background ? '2' : '1024');
      },
      oomKilled() {
        if (v2) return /oom_kill [1-9]/.test(read(file('memory', 'memory.events')));
        const control = read(file('memory', 'memory.oom_control'));
        if (/oom_kill \d/.test(control)) return /oom_kill [1-9]/.test(control);
        return Number(read(file('memory', 'memory.failcnt')) || 0) > 0;
      },
      peakBytes() {
        const v = v2
          ? read(file('memory', 'memory.peak'))
          : read(file('memory', 'memory.max_usage_in_bytes'));
        return v.trim() ? Number(v.trim()) : undefined;
      },
      remove() {
        for (const d of dirs.values()) {
          try {
            rmdirSync(d);
          } catch {}
        }
      },
    };
  }

  /** Removes the parent groups (their children must be gone). */
  close(): void {
    for (const parent of this.parents.values()) {
      try {
        for (const child of readdirSync(parent, { withFileTypes: true }))
          if (child.isDirectory()) rmdirSync(join(parent, child.name));
        rmdirSync(parent);
      } catch {}
    }
  }
}
