/**
 * Child processes of the benchmark: every server under test and every load generator runs as its
 * own process, optionally pinned to a core with taskset. Each is started in its own process group
 * and tracked, so that it and everything it spawned (Kylix's sandbox processes) is killed when the
 * bench ends, fails or is interrupted.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';

/** A tracked child process. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr, interleaved), for error messages. */
  output(): string;
  /** Resolves with the first match of `pattern` in its output, or rejects if it exits first or times out. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code when it ends on its own. */
  exited: Promise<number | null>;
  /** SIGTERM to its whole process group, SIGKILL after a grace period; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** How to start a child. */
export interface SpawnOptions {
  /** Cores to pin it to (a taskset list such as "0" or "0,1"); ignored when taskset is missing. */
  cpus?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Keep at most this many characters of output (default 64 KiB). */
  keepOutput?: number;
}

const live = new Set<Child>();
const folders = new Set<string>();
let hooked = false;

/** True when `taskset` can pin processes here. */
export const HAS_TASKSET =
  spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Kills every child still running and deletes the temp folders, synchronously (for exit paths). */
export function killAll(): void {
  for (const c of live) killGroup(c.pid, 'SIGKILL');
  live.clear();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}

/** Deletes `dir` when the bench exits, however it exits; returns a function that deletes it now. */
export function removeOnExit(dir: string): () => void {
  hookExit();
  folders.add(dir);
  return () => {
    folders.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Starts `command args…` in its own process group, pinned to `cpus` when asked; see the file comment. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): Child {
  hookExit();
  const pinned = options.cpus !== undefined && HAS_TASKSET;
  const proc = spawn(pinned ? 'taskset' : command, pinned ? ['-c', options.cpus!, command, ...args] : args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const keep = options.keepOutput ?? 64 * 1024;
  let output = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > keep) output = output.slice(-keep);
    for (const w of watchers) w();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', (err) => {
      output += `\n[spawn error] ${err.message}`;
      resolve(-1);
    });
  });
  if (proc.pid === undefined) {
    // spawn failed synchronously (e.g. ENOENT); the error event carries the reason.
    throw new Error(`could not start ${name} (${command}): no such program or not executable`);
  }
  const pid = proc.pid;
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const w of watchers) w();
  });

  const child: Child = {
    name,
    pid,
    proc,
    output: () => output,
    exited,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = output.match(pattern);
          if (m) return done(() => resolve(m));
          if (gone)
            return done(() =>
              reject(new Error(`${name} exited before printing ${pattern}:\n${output.slice(-2000)}`)),
            );
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(
                new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${output.slice(-2000)}`),
              ),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          settle();
        };
        watchers.add(check);
        check();
      });
    },
    async stop(graceMs = 3000) {
      live.delete(child);
      if (gone) {
        // The leader is gone; its group (sandbox children) may not be.
        killGroup(pid, 'SIGKILL');
        return;
      }
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL');
    },
  };
  live.add(child);
  return child;
}

/** Runs a command to completion and returns its exit code and output (stdout, stderr apart). */
export async function runProcess(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  hookExit();
  const pinned = options.cpus !== undefined && HAS_TASKSET;
  const proc = spawn(pinned ? 'taskset' : command, pinned ? ['-c', options.cpus!, command, ...args] : args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  proc.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const tracked: Child | undefined = proc.pid === undefined ? undefined : ({ name, pid: proc.pid } as Child);
  if (tracked) live.add(tracked);
  const timer = options.timeoutMs
    ? setTimeout(() => proc.pid && killGroup(proc.pid, 'SIGKILL'), options.timeoutMs)
    : undefined;
  const code = await new Promise<number | null>((resolve) => {
    proc.once('close', (c) => resolve(c));
    proc.once('error', (err) => {
      stderr += `[spawn error] ${err.message}`;
      resolve(-1);
    });
  });
  clearTimeout(timer);
  if (tracked) live.delete(tracked);
  return { code, stdout, stderr };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Pins this process (all its threads) to `cpus`; returns false when it cannot. */
export function pinSelf(cpus: string): boolean {
  if (!HAS_TASKSET) return false;
  return spawnSync('taskset', ['-a', '-cp', cpus, String(process.pid)], { stdio: 'ignore' }).status === 0;
}
