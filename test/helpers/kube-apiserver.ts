/**
 * A real Kubernetes API server for the Kubernetes suites: kube-apiserver v1.20.2 on etcd 3.4, with
 * kube-controller-manager's namespace, garbage-collector and service-account controllers (so
 * ownerReferences are collected), built from Debian 12 packages by ../shared/tools/kube-apiserver.sh
 * and cached. Nothing here builds it (`.ci/run` does, once): when the script or its cached build is
 * missing, `kubeApiServerSkipReason()` says why and the suites skip.
 *
 * Also: `kubectl()`, the real /usr/bin/kubectl run with a kubeconfig, for any API server (a real one
 * or Kylix's own), and `installKylixCrds()`, which installs Kylix's CRDs on a server as a user does.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { customResourceDefinitions } from '../../src/kubernetes/crds.js';

/** The script that builds and starts the servers; KUBE_APISERVER_SH overrides where it is. */
export const KUBE_APISERVER_SH =
  process.env.KUBE_APISERVER_SH ?? resolve(import.meta.dirname, '../../../shared/tools/kube-apiserver.sh');

/** The real kubectl; KUBECTL overrides it. */
export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

/** Where the script caches its build (the script's own default). */
const CACHE =
  process.env.KUBE_APISERVER_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kube-apiserver-deb12');

/** A running API server. */
export interface KubeApiServer {
  /** A kubeconfig file with the server's URL, CA and an admin (system:masters) token. */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  url: string;
  /** The admin bearer token. */
  token: string;
  /** The folder of this run's certificates, etcd data and logs. */
  state: string;
  /** Stops kube-controller-manager, kube-apiserver and etcd (by the PIDs the script saved) and removes the state (KUBE_APISERVER_KEEP_STATE=1 keeps it). */
  stop(): Promise<void>;
}

/** Why the suites cannot run here (undefined: they can). Never starts a build. */
export function kubeApiServerSkipReason(): string | undefined {
  if (!existsSync(KUBE_APISERVER_SH))
    return `${KUBE_APISERVER_SH} is not there (it comes with ../shared/tools); set KUBE_APISERVER_SH to the script`;
  if (!existsSync(KUBECTL)) return `kubectl is not at ${KUBECTL}; install kubectl or set KUBECTL`;
  const missing = ['kube-apiserver', 'etcd', 'kube-controller-manager'].filter(
    (b) => !existsSync(join(CACHE, 'bin', b)),
  );
  const stamp = existsSync(join(CACHE, 'STAMP')) ? readFileSync(join(CACHE, 'STAMP'), 'utf8').trim() : '';
  if (missing.length > 0 || !stamp)
    return `the kube-apiserver build is not cached in ${CACHE} (missing: ${missing.join(', ') || 'STAMP'}); run \`KUBE_APISERVER_CONTROLLERS=1 ${KUBE_APISERVER_SH} build\` once (about 10 minutes; .ci/run does it)`;
  return undefined;
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/**
 * Starts etcd, kube-apiserver and the controllers on free ports (a few seconds once built).
 * Call `kubeApiServerSkipReason()` first; this throws when they cannot start.
 */
export async function startKubeApiServer(): Promise<KubeApiServer> {
  const env = { ...process.env, KUBE_APISERVER_CONTROLLERS: '1' };
  // Once more on failure: a free port the script picked can be taken before its server binds it
  // (seen as "kube-controller-manager did not start"), which says nothing about the code under test.
  let started = await run('bash', [KUBE_APISERVER_SH, 'start'], env, 180_000);
  if (started.code !== 0) started = await run('bash', [KUBE_APISERVER_SH, 'start'], env, 180_000);
  const { code, stdout, stderr } = started;
  const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
  const state = /^STATE=(.+)$/m.exec(stdout)?.[1];
  if (code !== 0 || !kubeconfig || !state)
    throw new Error(`kube-apiserver.sh start failed (exit ${code}):\n${stderr.slice(-4000)}`);
  const vars = Object.fromEntries(
    readFileSync(join(state, 'env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  let stopped = false;
  return {
    kubeconfig,
    state,
    url: vars.KUBE_APISERVER_URL ?? '',
    token: vars.KUBE_APISERVER_TOKEN ?? '',
    async stop() {
      if (stopped) return;
      stopped = true;
      await run('bash', [KUBE_APISERVER_SH, 'stop', state], env, 60_000);
      if (process.env.KUBE_APISERVER_KEEP_STATE !== '1') rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * Drops kubectl's cached discovery for `kubeconfig`: after installing CRDs, so the next kubectl call
 * sees the new kinds (kubectl would otherwise trust its cache for minutes).
 */
export function forgetDiscovery(kubeconfig: string): void {
  rmSync(`${kubeconfig}.cache`, { recursive: true, force: true });
}

/** What kubectl printed and how it exited. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real kubectl with `kubeconfig` (and `input` on stdin, for `-f -`). Never throws for a
 * non-zero exit: the caller asserts on `code`. Discovery and OpenAPI are cached next to the
 * kubeconfig, not in ~/.kube/cache, so a reused port never serves another test's stale documents.
 */
export function kubectl(
  kubeconfig: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<KubectlResult> {
  return new Promise((done, fail) => {
    const child = spawn(
      KUBECTL,
      ['--kubeconfig', kubeconfig, '--cache-dir', `${kubeconfig}.cache`, ...args],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Installs Kylix's CRDs as a user does (`kylix crds | kubectl apply -f -`) and waits until the
 * server serves them; throws with kubectl's output when either step fails.
 */
export async function installKylixCrds(kubeconfig: string): Promise<void> {
  const crds = customResourceDefinitions()
    .map((c) => stringify(c))
    .join('---\n');
  for (const [args, input] of [
    [['apply', '-f', '-'], crds],
    [
      [
        'wait',
        '--for',
        'condition=established',
        '--timeout=60s',
        'crd',
        '-l',
        'app.kubernetes.io/part-of=kylix',
      ],
    ],
  ] as const) {
    const r = await kubectl(kubeconfig, [...args], input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  }
}
