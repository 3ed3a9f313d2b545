/**
 * `kylix dev` and `kylix server`: start a node in this process (the CLI loads this file only when
 * one of them runs, so other commands never load the server). dev applies the manifests under its folders and
 * re-applies them when a file changes; server is the long-running form and requires a token.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { watch } from 'chokidar';
import { applyManifests } from '../cli/apply.js';
import { ApiClient } from '../cli/client.js';
import { announceDev } from '../cli/discovery.js';
import { loadInstallation } from '../config/installation.js';
import { describeError, KylixError } from '../errors.js';
import { createPlatformLogger, type PlatformLevel, type PlatformLogger } from '../observability/logger.js';
import { type Platform, startPlatform } from '../platform.js';
import { VERSION } from '../version.js';
import { DevLogPacer, summaryLine } from './dev-log.js';
import { loadTls, type TlsPair } from './tls.js';

/** Flags shared by dev and server. */
export interface ServeFlags {
  host?: string;
  port?: string;
  apiHost?: string;
  apiPort?: string;
  dataDir?: string;
  config?: string;
  namespace?: string;
  watch?: boolean;
  /** server: start without bubblewrap (it refuses to, otherwise). */
  insecureSandbox?: boolean;
  /** The control API's certificate and key (PEM files); `kylix server` makes a pair when absent. */
  tlsCert?: string;
  tlsKey?: string;
  /** false (--no-tls): serve the control API over plain HTTP (behind a TLS-terminating proxy). */
  tls?: boolean;
}

/** The node's platform log: human lines on a terminal, JSON lines (pino) otherwise. */
let logger: PlatformLogger | undefined;
function say(message: string, fields?: Record<string, unknown>, level: PlatformLevel = 'info'): void {
  logger ??= createPlatformLogger();
  logger.log(level, message, fields);
}

const isLoopback = (host: string) =>
  host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');

function portOf(flag: string | undefined, env: string | undefined, fallback: number): number {
  const v = flag ?? env;
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new KylixError('ERR_BAD_REQUEST', `"${v}" is not a port number (0-65535).`);
  return n;
}

/**
 * Where the bootstrap admin token comes from: KYLIX_ADMIN_TOKEN (the same on every node of a
 * fleet), else `<data>/admin-token`, made on the installation's first start (docs/access.md).
 */
function adminSource(dataDir: string): { token: string } | { adminTokenFile: string } {
  const fromEnv = process.env.KYLIX_ADMIN_TOKEN?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 32 || /\s/.test(fromEnv))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        'KYLIX_ADMIN_TOKEN must be at least 32 characters with no spaces; make one with: openssl rand -base64 32',
      );
    return { token: fromEnv };
  }
  return { adminTokenFile: join(dataDir, 'admin-token') };
}

/**
 * The control API's TLS: --tls-cert/--tls-key (or KYLIX_TLS_CERT_FILE/KYLIX_TLS_KEY_FILE) when given;
 * else, for `kylix server`, a private CA and certificate made in `<data>/tls/` on first start
 * (kubectl sends a token only over HTTPS); none for `kylix dev` or with --no-tls (KYLIX_NO_TLS=1).
 */
function tlsOf(
  flags: ServeFlags,
  mode: 'dev' | 'server',
  dataDir: string,
  apiHost: string,
): TlsPair | undefined {
  if (flags.tls === false || process.env.KYLIX_NO_TLS === '1') return undefined;
  const certFile = flags.tlsCert ?? process.env.KYLIX_TLS_CERT_FILE;
  const keyFile = flags.tlsKey ?? process.env.KYLIX_TLS_KEY_FILE;
  if (mode === 'dev' && !certFile && !keyFile) return undefined;
  return loadTls({ certFile, keyFile, dataDir, apiHost });
}

/**
 * Whether bubblewrap is required: `kylix server` (the production form) refuses to start without
 * it unless told otherwise (--insecure-sandbox, KYLIX_INSECURE_SANDBOX=1, or an explicit
 * KYLIX_SANDBOX_BWRAP); `kylix dev` runs without it, with a warning.
 */
function bubblewrapMode(flags: ServeFlags, mode: 'dev' | 'server'): 'auto' | 'off' | 'require' {
  const explicit = process.env.KYLIX_SANDBOX_BWRAP;
  if (explicit === 'auto' || explicit === 'off' || explicit === 'require') return explicit;
  const insecure = flags.insecureSandbox || process.env.KYLIX_INSECURE_SANDBOX === '1';
  return mode === 'server' && !insecure ? 'require' : 'auto';
}

async function start(flags: ServeFlags, mode: 'dev' | 'server'): Promise<Platform> {
  const defaultHost = mode === 'dev' ? '127.0.0.1' : '0.0.0.0';
  const host = flags.host ?? process.env.KYLIX_HOST ?? defaultHost;
  const apiHost = flags.apiHost ?? process.env.KYLIX_API_HOST ?? host;
  const dataDir = resolve(flags.dataDir ?? process.env.KYLIX_DATA_DIR ?? '.kylix');
  // The data folder is state, never source: it keeps itself out of git.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(dataDir, '.gitignore')))
    writeFileSync(join(dataDir, '.gitignore'), '# Kylix state (kylix dev): not source.\n*\n');
  // The API is open only in dev mode bound to loopback; anywhere else it needs a token.
  const open = mode === 'dev' && isLoopback(apiHost);
  const tls = tlsOf(flags, mode, dataDir, apiHost);
  const platform = await startPlatform({
    ...(tls ? { apiTls: { cert: tls.cert, key: tls.key } } : {}),
    dataDir,
    gatewayHost: host,
    gatewayPort: portOf(flags.port, process.env.KYLIX_PORT, 8080),
    apiHost,
    apiPort: portOf(flags.apiPort, process.env.KYLIX_API_PORT, 8081),
    ...(open ? {} : adminSource(dataDir)),
    installation: loadInstallation(flags.config ?? process.env.KYLIX_CONFIG_FILE),
    // dev opens the gateway once its folders are applied, so the first request finds them deployed.
    holdGateway: mode === 'dev',
    testScheduled: mode === 'dev',
    isolation: { bubblewrap: bubblewrapMode(flags, mode) },
    log: (message, level, fields) => say(message, fields, level),
  });
  const created = platform.admin.created;
  if (created)
    say(
      `Admin token (shown once; stored in ${join(dataDir, 'admin-token')}):\n  ${created}\nUse it with: export KYLIX_TOKEN=${created}`,
    );
  if (tls?.created)
    say(
      `TLS: made a private CA and a certificate for the control API in ${tls.created.dir} (shown once). Clients trust this CA:\n${tls.ca.trimEnd()}\nkubectl: kylix kubeconfig --data-dir ${dataDir} > kubeconfig; kylix CLI: export NODE_EXTRA_CA_CERTS=${join(tls.created.dir, 'ca.crt')}`,
      { caFile: join(tls.created.dir, 'ca.crt') },
    );
  say(`Kylix ${VERSION} (${mode}) — data in ${dataDir}`, { version: VERSION, mode, dataDir });
  say(`  control API  ${platform.apiUrl}${open ? '' : ' (bearer token required)'}`, {
    apiUrl: platform.apiUrl,
    tokenRequired: !open,
  });
  say(`  dashboard    ${platform.apiUrl}/${open ? '' : ' (asks for the token)'}`, {
    dashboardUrl: `${platform.apiUrl}/`,
  });
  say(
    `  sandbox      ${platform.isolation.layers.map((l) => `${l.name} ${l.on ? 'on' : 'OFF'}`).join(', ')} (details: kylix doctor)`,
    { sandbox: Object.fromEntries(platform.isolation.layers.map((l) => [l.name, l.on])) },
  );
  const namespaces = platform.isolation.layers.find((l) => l.name === 'namespaces');
  if (mode === 'server' && !namespaces?.on)
    say(
      '  WARNING      running with --insecure-sandbox: tenant code has no namespace layer (bubblewrap). Install bubblewrap and drop the flag for production.',
      undefined,
      'warn',
    );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping…`, { signal });
    platform.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return platform;
}

/** Prints each function's routes as URLs; a host route with the gateway's port, as a client needs it. */
async function printRoutes(platform: Platform): Promise<void> {
  const port = new URL(platform.gatewayUrl).port;
  for (const fn of await platform.registry.list('Function', undefined)) {
    const routes = ((fn.spec as { routes?: { path: string; host?: string }[] }).routes ?? []).map((r) =>
      r.host
        ? `http://${r.host}${/:\d+$/.test(r.host) || !port ? '' : `:${port}`}${r.path}`
        : `${platform.gatewayUrl}${r.path}`,
    );
    say(
      `  ${fn.metadata.namespace}/${fn.metadata.name}  ${routes.join('  ') || '(no routes; call it with kylix invoke)'}`,
      { namespace: fn.metadata.namespace, function: fn.metadata.name, routes },
    );
  }
}

/** Levels of function log lines, as the platform log's. */
const LOG_LEVEL: Record<string, PlatformLevel> = {
  debug: 'debug',
  log: 'info',
  info: 'info',
  warn: 'warn',
  error: 'error',
};

/** Shows every function's console output, exceptions and requests in the dev terminal (paced: dev-log.ts). */
function showFunctionLogs(platform: Platform): void {
  const who = (namespace: string, fn: string) => (namespace === 'default' ? fn : `${namespace}/${fn}`);
  const pacer = new DevLogPacer(
    (namespace, fn, e) =>
      say(
        `[${who(namespace, fn)}] ${e.message}`,
        { namespace, function: fn, revision: e.revision, requestId: e.requestId, source: e.source },
        LOG_LEVEL[e.level] ?? 'info',
      ),
    (namespace, fn, held, byStatus) =>
      say(
        `[${who(namespace, fn)}] ${summaryLine(held, byStatus)}; the latest: kylix logs ${fn} --tail 1000${namespace === 'default' ? '' : ` -n ${namespace}`}`,
        { namespace, function: fn, source: 'platform', held },
      ),
  );
  platform.logs.followAll((namespace, fn, e) => pacer.entry(namespace, fn, e));
  // The last second's summary is written when the node stops, too.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => pacer.close());
}

/**
 * Whether the current folder is a Kylix project: a manifest (a .yaml, .yml or .json file naming
 * kylix.dev/) at its top. Only then does `kylix dev` with no folder apply it, so a dev started in
 * a home folder or a monorepo's root applies nothing it was not asked to.
 */
function isProjectFolder(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => {
      if (!/\.(ya?ml|json)$/.test(n)) return false;
      const file = join(dir, n);
      return statSync(file).size < 1_048_576 && readFileSync(file, 'utf8').includes('kylix.dev/');
    });
  } catch {
    return false;
  }
}

/** `kylix dev [DIR…]` (no folder: the current one, when it holds a manifest). */
export async function devCommand(given: string[], flags: ServeFlags): Promise<void> {
  const dirs = given.length > 0 ? given : isProjectFolder('.') ? ['.'] : [];
  if (given.length === 0 && dirs.length === 0)
    say(
      'No manifest in this folder (a .yaml with apiVersion: kylix.dev/v1): nothing to apply. Give a folder: kylix dev DIR',
    );
  const platform = await start(flags, 'dev');
  showFunctionLogs(platform);
  const client = new ApiClient({ server: platform.apiUrl, namespace: flags.namespace ?? 'default' });
  const gatewayLine = async () => {
    const gatewayUrl = await platform.openGateway();
    say(`  gateway      ${gatewayUrl}`, { gatewayUrl });
  };
  const applyAll = async () => {
    try {
      await applyManifests(client, dirs, { out: (l) => say(`  ${l}`) });
    } catch (err) {
      say(
        err instanceof KylixError ? describeError(err) : String(err instanceof Error ? err.stack : err),
        undefined,
        'error',
      );
    }
  };
  if (dirs.length > 0) {
    say(`Applying ${dirs.join(', ')}:`);
    await applyAll();
  }
  await gatewayLine();
  const withdraw = announceDev({
    pid: process.pid,
    apiUrl: platform.apiUrl,
    gatewayUrl: platform.gatewayUrl,
    dataDir: resolve(flags.dataDir ?? process.env.KYLIX_DATA_DIR ?? '.kylix'),
  });
  process.once('exit', withdraw);
  if (dirs.length > 0) {
    say('Serving:');
    await printRoutes(platform);
  }
  if (dirs.length > 0 && flags.watch !== false) {
    let timer: NodeJS.Timeout | undefined;
    const watcher = watch(dirs, {
      ignoreInitial: true,
      // Not code: dependencies, state, and files that tools (or `kylix dev > dev.log` itself) keep
      // writing — a log inside the project re-applied it on every line it wrote.
      ignored: (p) =>
        /(^|[/\\])(node_modules|\.kylix|\.git)([/\\]|$)/.test(p) ||
        /(\.log|\.swp|\.swx|~|\.tmp|\.DS_Store)$/.test(p),
    });
    watcher.on('all', (_event, path) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        say(`Changed: ${path}; applying again`, { path });
        void applyAll();
      }, 100);
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    say(`Watching ${dirs.join(', ')} for changes. Ctrl-C stops.`);
  }
}

/** `kylix server`. */
export async function serverCommand(flags: ServeFlags): Promise<void> {
  const platform = await start(flags, 'server');
  say(`  gateway      ${platform.gatewayUrl}`, { gatewayUrl: platform.gatewayUrl });
  await printRoutes(platform);
}
