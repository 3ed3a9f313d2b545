/**
 * The servers a throughput scenario compares: Kylix (gateway + sandbox), a raw Node.js baseline
 * (a fixture script run in its own process) and Cloudflare's workerd serving the same module, with a
 * config the bench writes. Each is a child process on a free port, pinned to the server cores.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, startKylix } from './kylix.js';
import { waitForBody } from './load.js';
import { type Child, freePort, runProcess, startProcess } from './processes.js';

/** One server under test, answering at `url`. */
export interface ServerUnderTest {
  name: string;
  url: string;
  /** The process whose tree is this server. */
  pid: number;
  stop(): Promise<void>;
}

/** What every server of one comparison serves. */
export interface Workload {
  /** The fetch-handler module (TypeScript) Kylix and workerd run. */
  module: string;
  /** The folder with its kylix.yaml. */
  manifests: string;
  /** The raw Node.js server script; it listens on process.env.PORT. */
  rawServer: string;
  /** The path requested. */
  path: string;
  /** The body every server must answer with. */
  body: string;
}

/** Kylix: `kylix dev` with the workload's manifests. */
export async function startKylixServer(w: Workload, cpus?: string): Promise<ServerUnderTest> {
  const node = await startKylix({ manifests: [w.manifests], cpus });
  const url = `${node.gatewayUrl}${w.path}`;
  try {
    await waitForBody(url, w.body, 30_000);
  } catch (err) {
    await node.stop();
    throw err;
  }
  return { name: 'kylix', url, pid: node.child.pid, stop: () => node.stop() };
}

/** The raw Node.js baseline: the fixture script under `node --import tsx`. */
export async function startRawServer(w: Workload, cpus?: string): Promise<ServerUnderTest> {
  const port = await freePort();
  const child = startProcess('raw', process.execPath, ['--import', 'tsx', w.rawServer], {
    cpus,
    cwd: ROOT,
    env: { PORT: String(port) },
  });
  return ready('raw', child, `http://127.0.0.1:${port}${w.path}`, w.body);
}

/** The workerd binary from the `workerd` npm package. */
export function workerdBinary(): string {
  return (createRequire(import.meta.url)('workerd') as { default: string }).default;
}

/** Whether the workerd binary runs here; the reason when it does not. */
export async function workerdUsable(): Promise<
  { ok: true; version: string } | { ok: false; reason: string }
> {
  let bin: string;
  try {
    bin = workerdBinary();
  } catch (err) {
    return { ok: false, reason: `the workerd package is not installed (${(err as Error).message})` };
  }
  const { code, stdout, stderr } = await runProcess('workerd --version', bin, ['--version'], {
    timeoutMs: 20_000,
  });
  if (code !== 0)
    return {
      ok: false,
      reason: `${bin} --version failed (exit ${code}): ${(stderr || stdout).trim().slice(0, 300)}`,
    };
  return { ok: true, version: stdout.trim() };
}

/** The workerd config (Cap'n Proto text) serving one ES module on one socket. */
export function workerdConfig(port: number, moduleFile: string, compatibilityDate: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "${moduleFile}") ],
  compatibilityDate = "${compatibilityDate}",
);
`;
}

/** workerd serving the workload's module, bundled with esbuild for the workerd conditions. */
export async function startWorkerdServer(w: Workload, dir: string, cpus?: string): Promise<ServerUnderTest> {
  const port = await freePort();
  await build({
    entryPoints: [w.module],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    target: 'es2022',
    outfile: join(dir, 'worker.js'),
    logLevel: 'silent',
  });
  // A date the binary supports: the one its npm package was built for.
  const date = (createRequire(import.meta.url)('workerd') as { compatibilityDate: string }).compatibilityDate;
  writeFileSync(join(dir, 'config.capnp'), workerdConfig(port, 'worker.js', date));
  const child = startProcess('workerd', workerdBinary(), ['serve', join(dir, 'config.capnp')], {
    cpus,
    cwd: dir,
  });
  return ready('workerd', child, `http://127.0.0.1:${port}${w.path}`, w.body);
}

async function ready(name: string, child: Child, url: string, body: string): Promise<ServerUnderTest> {
  let serving = false;
  try {
    await Promise.race([
      waitForBody(url, body, 30_000),
      child.exited.then((code) => {
        if (!serving)
          throw new Error(`${name} exited (code ${code}) before serving:\n${child.output().slice(-2000)}`);
      }),
    ]);
    serving = true;
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { name, url, pid: child.pid, stop: () => child.stop() };
}
