/**
 * How a sandbox process is started: its command line (Node with its permission flags, inside
 * bubblewrap when available, joining its cgroup first), its environment, and its file descriptors
 * (0–2 stdio, 3 the control channel, 4… the instance channels: all socketpairs, inherited, so
 * nothing outside the process can connect to them). revision-process.ts runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KylixError } from '../errors.js';
import { CONTROL_FD } from '../sandbox/control.js';
import { bubblewrapArgs } from './isolation/bubblewrap.js';
import type { SandboxCgroup } from './isolation/cgroups.js';
import type { Isolation } from './isolation/isolation.js';
import { fsScope, permissionFlag } from './isolation/node-runtime.js';

/**
 * The sandbox entry point, a self-contained bundle that `npm run build` writes to dist/sandbox/
 * (this file lives two levels below the package root both as src/ and as dist/).
 */
export const SANDBOX_HOST = fileURLToPath(new URL('../../dist/sandbox/host.js', import.meta.url));

/**
 * Instance channels made at spawn (fds 4…): a channel's fd closes with its instance, so a process
 * can start this many instances in its life; then the runtime gives the revision a fresh process.
 */
export const CHANNEL_SLOTS = 12;
/** The sandbox process's fd of its first channel (0–2 stdio, 3 the control channel). */
export const FIRST_CHANNEL_FD = CONTROL_FD + 1;
/**
 * Threads in a sandbox process's pool (crypto.subtle, compression run there): few, so one revision
 * cannot spread work over every core; what they use is charged to its requests (sandbox/watchdog.ts).
 */
const SANDBOX_THREADPOOL = '2';

/** The environment a sandbox process gets: bubblewrap clears its own and sets this (and TZ) inside. */
function sandboxEnv(namespace: string): Record<string, string> {
  return { KYLIX_NAMESPACE: namespace, UV_THREADPOOL_SIZE: SANDBOX_THREADPOOL };
}

/** What the command line of one sandbox process depends on. */
export interface SandboxLaunch {
  namespace: string;
  isolation: Isolation;
  /** The revision's code: with the sandbox bundle, all the process may read. */
  codeDir: string;
  /** The folder of its sockets: all it may write. */
  sockDir: string;
  /** The cgroup it joins before anything starts, where the host has cgroups. */
  cgroup?: SandboxCgroup;
}

/** The command line: Node with its permission flags, inside bwrap when available. */
export function sandboxCommand(launch: SandboxLaunch): { file: string; args: string[] } {
  const { namespace, isolation, codeDir, sockDir, cgroup } = launch;
  const rt = isolation.runtime;
  const hostDir = dirname(SANDBOX_HOST);
  const reads = [hostDir, codeDir];
  const flags = ['--no-warnings', '--enable-source-maps', permissionFlag(rt.major), '--allow-worker'];
  // Node 20-21 take one comma-separated list; later versions take the flag once per path.
  if (rt.major >= 22) for (const r of reads) flags.push(`--allow-fs-read=${fsScope(rt.major, r)}`);
  else flags.push(`--allow-fs-read=${reads.map((r) => fsScope(rt.major, r)).join(',')}`);
  flags.push(`--allow-fs-write=${fsScope(rt.major, sockDir)}`);
  const node = [rt.path, ...flags, SANDBOX_HOST];
  const env = sandboxEnv(namespace);
  let file = rt.path;
  let args = node.slice(1);
  if (isolation.bubblewrap) {
    file = isolation.bubblewrap;
    args = bubblewrapArgs(
      { nodePath: rt.path, readOnly: reads, readWrite: [sockDir], tmpBytes: 16 * 2 ** 20, env },
      node,
    );
  }
  if (cgroup) {
    // Join the cgroup before anything starts: a shell writes its own pid, then becomes the sandbox.
    const writes = cgroup.procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
    args = ['-c', `${writes} && exec "$@"`, 'kylix-sandbox', file, ...args];
    file = '/bin/sh';
  }
  return { file, args };
}

/** A sandbox process just spawned, and the supervisor's end of its control channel. */
export interface SpawnedSandbox {
  child: ChildProcess;
  controlSocket: Socket;
}

/**
 * Spawns a sandbox process, its stderr a utf8 pipe. Throws ERR_NOT_READY (having killed whatever
 * started) when the process or its control channel could not be made.
 */
export function spawnSandbox(launch: SandboxLaunch): SpawnedSandbox {
  const { file, args } = sandboxCommand(launch);
  const child = spawn(file, args, {
    // fd 3 is the control channel, 4… the instance channels: all socketpairs.
    stdio: ['ignore', 'ignore', 'pipe', ...Array<'pipe'>(1 + CHANNEL_SLOTS).fill('pipe')],
    env: { TZ: 'UTC', ...sandboxEnv(launch.namespace) },
  });
  // At once: a spawn that fails (EMFILE, ENOMEM) reports it as an 'error' on the next tick, and
  // without a listener that would end the supervisor.
  child.on('error', () => undefined);
  const controlSocket = child.stdio[CONTROL_FD] as Socket | null | undefined;
  if (!controlSocket || child.pid === undefined) {
    child.kill('SIGKILL');
    throw new KylixError(
      'ERR_NOT_READY',
      'The sandbox process could not be started (the node may be out of file descriptors or memory); retry.',
    );
  }
  child.stderr?.setEncoding('utf8');
  return { child, controlSocket };
}
