/**
 * The Kylix node under test, started the way a user starts it (`kylix dev`) as a child process on
 * free ports with a fresh data folder, plus the CLI (`kylix apply`) as a separate client process.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Child, freePort, removeOnExit, runProcess, startProcess } from './processes.js';

/** The repository root (bench/lib/../..). */
export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The Kylix CLI entry; BENCH_KYLIX_BIN points at another build (an earlier commit) for a before/after. */
export const KYLIX_BIN = process.env.BENCH_KYLIX_BIN || join(ROOT, 'bin', 'kylix.js');

/** A running Kylix node. */
export interface KylixNode {
  child: Child;
  gatewayUrl: string;
  apiUrl: string;
  dataDir: string;
  /** Stops the node and its sandbox processes and deletes its data folder. */
  stop(): Promise<void>;
}

/** Options for startKylix. */
export interface KylixOptions {
  /** Manifest folders `kylix dev` applies at start. */
  manifests?: string[];
  /** Cores to pin the node (and so its sandbox processes) to. */
  cpus?: string;
  /** Extra environment (KYLIX_POSTGRES_URL… to run on the fleet backends). */
  env?: Record<string, string>;
}

/** Fails early with a clear message when the platform has not been built. */
export function assertBuilt(): void {
  if (process.env.BENCH_KYLIX_BIN) return;
  if (
    !existsSync(join(ROOT, 'dist', 'platform.js')) ||
    !existsSync(join(ROOT, 'dist', 'sandbox', 'host.js'))
  ) {
    throw new Error('dist/ is missing: run `npm run build` (or `npm install`) before the benchmarks.');
  }
}

/** Starts `kylix dev` on free ports; resolves once its API answers and its manifests are applied. */
export async function startKylix(options: KylixOptions = {}): Promise<KylixNode> {
  assertBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'kylix-bench-'));
  const removeDataDir = removeOnExit(dataDir);
  const [port, apiPort] = [await freePort(), await freePort()];
  const args = [
    // Node flags for the node under test (--cpu-prof, --trace-gc…), space-separated.
    ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    KYLIX_BIN,
    'dev',
    ...(options.manifests ?? []),
    '--port',
    String(port),
    '--api-port',
    String(apiPort),
    '--data-dir',
    dataDir,
    '--no-watch',
  ];
  const child = startProcess('kylix', process.execPath, args, {
    cpus: options.cpus,
    cwd: ROOT,
    env: options.env,
  });
  const node: KylixNode = {
    child,
    gatewayUrl: `http://127.0.0.1:${port}`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    dataDir,
    async stop() {
      await child.stop();
      removeDataDir();
    },
  };
  try {
    await child.waitFor(/control API/, 30_000);
    if (options.manifests?.length) {
      await child.waitFor(/^Serving:|"message":"Serving:"/m, 120_000);
      if (/NOT ready|Error/.test(child.output()))
        throw new Error(`kylix dev could not apply ${options.manifests.join(', ')}:\n${child.output()}`);
    }
  } catch (err) {
    await node.stop();
    throw err;
  }
  return node;
}

/** The sandbox layers `kylix doctor` reports on this machine ("on   namespaces  bubblewrap …"), one per line. */
export async function kylixDoctor(): Promise<string[]> {
  const { stdout, stderr } = await runProcess('kylix doctor', process.execPath, [KYLIX_BIN, 'doctor'], {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  return `${stdout}\n${stderr}`
    .split('\n')
    .filter((l) => /^\s+(on|off)\s/.test(l) || /^Supervisor:/.test(l))
    .map((l) => l.trim().replace(/\s+/g, ' '));
}

/** Runs `kylix apply -f <dir> --server <api>` as its own process; rejects when it fails. */
export async function kylixApply(node: KylixNode, dir: string, cpus?: string): Promise<{ stdout: string }> {
  const { code, stdout, stderr } = await runProcess(
    'kylix apply',
    process.execPath,
    [KYLIX_BIN, 'apply', '-f', dir, '--server', node.apiUrl],
    { cpus, cwd: ROOT, timeoutMs: 120_000 },
  );
  if (code !== 0) throw new Error(`kylix apply -f ${dir} failed (exit ${code}):\n${stdout}\n${stderr}`);
  return { stdout };
}
