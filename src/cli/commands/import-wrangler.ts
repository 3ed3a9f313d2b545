/**
 * `kylix import wrangler [DIR]`: reads a Workers project's wrangler.toml, wrangler.json or
 * wrangler.jsonc (and .dev.vars) and writes DIR/kylix.yaml: the Function and the resources its
 * bindings name. What has no Kylix counterpart is listed, each with why, never silently dropped.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type ParseError, parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { stringify } from 'yaml';
import { KylixError } from '../../errors.js';
import { COMPATIBILITY_FLAGS } from '../../resources/kinds.js';
import { validateObject } from '../../resources/validate.js';

/** The config files looked for, in wrangler's order of preference. */
const CONFIG_FILES = ['wrangler.json', 'wrangler.jsonc', 'wrangler.toml'];

/** The part of a wrangler config this command reads. */
type Wrangler = Record<string, unknown>;
type Doc = {
  apiVersion: 'kylix.dev/v1';
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
};

/** What the import made: the manifest documents and the notes on what was not (or not fully) mapped. */
export interface WranglerImport {
  /** The config file read, relative to DIR. */
  configFile: string;
  documents: Doc[];
  /** One line per wrangler setting that could not be mapped (or was mapped approximately), with why. */
  unmapped: string[];
  /** Things the user should know (flags honoured, secrets to set). */
  notes: string[];
}

/** Keys Kylix has no counterpart for, with why. */
const UNSUPPORTED: Record<string, string> = {
  durable_objects: 'Durable Objects are not offered by Kylix; keep their state in a Database or KeyValue',
  migrations: 'Durable Object migrations have nothing to apply to on Kylix',
  services: 'service bindings: call the other function over HTTP (allow it in spec.egress)',
  analytics_engine_datasets: 'Analytics Engine has no Kylix counterpart',
  ai: 'Workers AI has no Kylix counterpart; call a model API with fetch (allow it in spec.egress)',
  vectorize: 'Vectorize has no Kylix counterpart',
  hyperdrive: 'Hyperdrive: bind a Kylix Database instead (it is PostgreSQL)',
  browser: 'Browser Rendering has no Kylix counterpart',
  tail_consumers: 'tail workers: read logs with `kylix logs` instead',
  dispatch_namespaces: 'Workers for Platforms has no Kylix counterpart',
  mtls_certificates: 'mTLS client certificates are not offered to functions',
  send_email: 'Email sending has no Kylix counterpart',
  workflows: 'Workflows are not offered by Kylix',
  unsafe: 'unsafe bindings are Cloudflare-internal',
  build: 'custom builds: run the build yourself; Kylix bundles `main` with esbuild',
  rules: 'module rules: Kylix bundles with esbuild and its default loaders',
  alias: 'module aliases: add them to your package.json or tsconfig paths',
  define: 'build-time defines are not applied',
  env: 'environments: only the top-level settings were imported',
  placement: 'Smart Placement does not apply',
};

/** Keys that need no mapping (identity, deploy-only or tooling settings). */
const IGNORED = new Set([
  'assets',
  'site',
  'name',
  'main',
  'account_id',
  'compatibility_date',
  'compatibility_flags',
  'workers_dev',
  'preview_urls',
  'route',
  'routes',
  'vars',
  'kv_namespaces',
  'd1_databases',
  'r2_buckets',
  'queues',
  'triggers',
  'limits',
  'observability',
  'logpush',
  'upload_source_maps',
  'minify',
  'keep_vars',
  'no_bundle',
  'dev',
  '$schema',
  'find_additional_modules',
  'base_dir',
  'preserve_file_names',
  'usage_model',
]);

/** CPU time a request gets on Workers' paid plans when wrangler's limits.cpu_ms is not set. */
const WORKERS_DEFAULT_CPU_MS = 30_000;

/** A Kylix resource name (a DNS label) from a wrangler name or binding. */
export function resourceName(name: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'app';
}

const doc = (kind: string, name: string, spec: Record<string, unknown> = {}): Doc => ({
  apiVersion: 'kylix.dev/v1',
  kind,
  metadata: { name },
  spec,
});

const list = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];

/** A route pattern ("example.com/api/*", "*.example.com/*") as a Kylix route, or why it cannot be one. */
export function routeOf(pattern: string): { host?: string; path: string; approx?: string } {
  const p = pattern.replace(/^https?:\/\//, '');
  const slash = p.indexOf('/');
  const host = (slash < 0 ? p : p.slice(0, slash)).toLowerCase();
  let path = slash < 0 ? '/*' : p.slice(slash);
  let approx: string | undefined;
  // Kylix allows "*" only as a whole last segment: "/api*" becomes "/api/*" (and "/api" is added).
  const star = path.indexOf('*');
  if (star >= 0 && !(path.endsWith('/*') && star === path.length - 1)) {
    const prefix = path.slice(0, star).replace(/\/+$/, '');
    approx = `route "${pattern}": Kylix matches "*" only as a whole last segment, so it became "${prefix}/*" (and "${prefix || '/'}")`;
    path = `${prefix}/*`;
  }
  const validHost = /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(host);
  return { ...(host && host !== '*' && validHost ? { host } : {}), path, approx };
}

/** The contents of DIR's config file, parsed; throws when there is none or it does not parse. */
export function readWranglerConfig(dir: string): { file: string; config: Wrangler } {
  const file = CONFIG_FILES.find((f) => existsSync(join(dir, f)));
  if (!file)
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${dir} has no wrangler.toml, wrangler.json or wrangler.jsonc. Run kylix import wrangler in a Workers project folder.`,
    );
  const text = readFileSync(join(dir, file), 'utf8');
  if (file.endsWith('.toml')) {
    try {
      return { file, config: parseToml(text) as Wrangler };
    } catch (err) {
      throw new KylixError('ERR_MANIFEST_INVALID', `${file} is not valid TOML: ${(err as Error).message}`);
    }
  }
  const errors: ParseError[] = [];
  const config = parseJsonc(text, errors, { allowTrailingComma: true }) as unknown;
  if (errors.length || typeof config !== 'object' || config === null)
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${file} is not valid JSON: ${errors.map((e) => `${printParseErrorCode(e.error)} at offset ${e.offset}`).join(', ') || 'not an object'}`,
    );
  return { file, config: config as Wrangler };
}

/** KEY=value lines of a .dev.vars file (quotes removed, comments skipped). */
export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m?.[1] || line.trim().startsWith('#')) continue;
    let value = m[2] ?? '';
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

/** spec.assets from wrangler's `assets` or `[site]`, noting what does not carry over. */
function mapAssets(config: Wrangler, unmapped: string[]): Record<string, unknown> | undefined {
  const a = config.assets as Record<string, unknown> | undefined;
  const site = config.site as Record<string, unknown> | undefined;
  if (a && typeof a === 'object') {
    if (typeof a.directory !== 'string') {
      unmapped.push('assets: no directory; Kylix serves assets from a folder (set assets.directory)');
      return undefined;
    }
    const out: Record<string, unknown> = { directory: `./${a.directory.replace(/^\.\//, '')}` };
    if (typeof a.binding === 'string') out.binding = a.binding;
    if (typeof a.not_found_handling === 'string') out.notFoundHandling = a.not_found_handling;
    if (typeof a.html_handling === 'string') out.htmlHandling = a.html_handling;
    if (a.run_worker_first === true) out.runWorkerFirst = true;
    else if (Array.isArray(a.run_worker_first)) {
      out.runWorkerFirst = true;
      unmapped.push(
        `assets.run_worker_first: the patterns ${JSON.stringify(a.run_worker_first)} became "always" (Kylix runs the worker first for every path or none); the function reaches the files through env.${typeof a.binding === 'string' ? a.binding : 'ASSETS'}`,
      );
    }
    if (typeof config.main !== 'string')
      unmapped.push(
        'assets without main: a Kylix Function needs code; add a worker that returns 404 (the files are served before it)',
      );
    return out;
  }
  if (site && typeof site === 'object' && typeof site.bucket === 'string') {
    for (const k of ['include', 'exclude'])
      if (site[k] !== undefined)
        unmapped.push(`site.${k}: not applied; list files to leave out in ${site.bucket}/.assetsignore`);
    return { directory: `./${site.bucket.replace(/^\.\//, '')}`, runWorkerFirst: true };
  }
  return undefined;
}

/** Translates a wrangler config (and .dev.vars, when given) into Kylix manifests. */
export function translateWrangler(
  config: Wrangler,
  options: { configFile: string; devVars?: Record<string, string>; hasFolder?: (rel: string) => boolean },
): WranglerImport {
  const unmapped: string[] = [];
  const notes: string[] = [];
  const resources = new Map<string, Doc>();
  const addResource = (kind: string, name: string, spec: Record<string, unknown> = {}) => {
    const key = `${kind}/${name}`;
    if (!resources.has(key)) resources.set(key, doc(kind, name, spec));
  };
  const name = resourceName(String(config.name ?? 'worker'));
  const spec: Record<string, unknown> = {};

  // 1. Code.
  if (typeof config.main === 'string') spec.source = `./${config.main.replace(/^\.\//, '')}`;
  else {
    spec.source = '.';
    unmapped.push('main: not set; the source is this folder (its package.json main or index.*)');
  }

  // 2. Routes: each pattern, then "/*" so the app answers on any host (kylix dev, workers.dev).
  const routes: { path: string; host?: string }[] = [];
  const patterns: unknown[] = [
    ...(config.route === undefined ? [] : [config.route]),
    ...(Array.isArray(config.routes) ? config.routes : []),
  ];
  for (const r of patterns) {
    const pattern = typeof r === 'string' ? r : String((r as Record<string, unknown>).pattern ?? '');
    if (!pattern) continue;
    const route = routeOf((r as Record<string, unknown>).custom_domain === true ? `${pattern}/*` : pattern);
    if (route.approx) {
      unmapped.push(route.approx);
      const exact = route.path.slice(0, -2) || '/';
      if (exact !== '/') routes.push({ path: exact, ...(route.host ? { host: route.host } : {}) });
    }
    routes.push({ path: route.path, ...(route.host ? { host: route.host } : {}) });
  }
  routes.push({ path: '/*' });
  spec.routes = routes.filter(
    (r, i) => routes.findIndex((o) => o.path === r.path && o.host === r.host) === i,
  );
  if (patterns.length)
    notes.push(
      'routes: added "/*" (any host) so the app answers under kylix dev; remove it on a shared node',
    );

  // 3. vars → env (strings) and spec.vars (numbers, booleans, arrays, objects: env sees them typed).
  const env: Record<string, string> = {};
  const vars: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((config.vars as Record<string, unknown>) ?? {})) {
    if (typeof value === 'string') env[key] = value;
    else vars[key] = value;
  }
  if (Object.keys(env).length) spec.env = env;
  if (Object.keys(vars).length) spec.vars = vars;

  // 4. Bindings and the resources they name.
  const bindings: Record<string, Record<string, string>> = {};
  for (const kv of list(config.kv_namespaces)) {
    const binding = String(kv.binding);
    const res = resourceName(binding);
    addResource('KeyValue', res);
    bindings[binding] = { keyValue: res };
  }
  for (const d1 of list(config.d1_databases)) {
    const binding = String(d1.binding);
    const res = resourceName(String(d1.database_name ?? binding));
    const dir = String(d1.migrations_dir ?? 'migrations');
    const hasMigrations = options.hasFolder?.(dir) ?? false;
    addResource('Database', res, hasMigrations ? { migrations: `./${dir.replace(/^\.\//, '')}` } : {});
    bindings[binding] = { database: res };
    unmapped.push(
      `d1_databases.${binding}: a Kylix Database speaks PostgreSQL, not SQLite; what PostgreSQL cannot take is translated (backticks, AUTOINCREMENT, drizzle-kit's migrations: see docs/workers-compatibility.md), the rest of SQLite's dialect is not, so check the migrations and queries${hasMigrations ? '' : ` (no ${dir} folder found)`}`,
    );
  }
  for (const r2 of list(config.r2_buckets)) {
    const binding = String(r2.binding);
    const res = resourceName(String(r2.bucket_name ?? binding));
    addResource('Bucket', res);
    bindings[binding] = { bucket: res };
    if (r2.jurisdiction !== undefined)
      unmapped.push(
        `r2_buckets.${binding}.jurisdiction (${r2.jurisdiction}): a Kylix Bucket is kept where the node's bucket provider keeps it; choose that provider's location instead`,
      );
  }
  const queues = (config.queues as Record<string, unknown>) ?? {};
  for (const p of list(queues.producers)) {
    const binding = String(p.binding);
    const res = resourceName(String(p.queue ?? binding));
    addResource('Queue', res);
    bindings[binding] = { queue: res };
  }
  const triggers: Record<string, unknown> = {};
  list(queues.consumers).forEach((c, i) => {
    const queue = resourceName(String(c.queue));
    addResource('Queue', queue);
    if (i > 0) {
      unmapped.push(
        `queues.consumers[${i}] (${c.queue}): a Kylix function consumes one queue; make another function for it`,
      );
      return;
    }
    const trigger: Record<string, unknown> = { name: queue };
    if (typeof c.max_batch_size === 'number')
      trigger.batchSize = Math.min(1000, Math.max(1, c.max_batch_size));
    if (typeof c.max_retries === 'number') trigger.maxRetries = Math.min(100, Math.max(0, c.max_retries));
    if (typeof c.dead_letter_queue === 'string') {
      trigger.deadLetter = resourceName(c.dead_letter_queue);
      addResource('Queue', trigger.deadLetter as string);
    }
    triggers.queue = trigger;
    for (const k of ['max_batch_timeout', 'max_concurrency', 'retry_delay'])
      if (c[k] !== undefined) unmapped.push(`queues.consumers[0].${k}: not configurable on Kylix`);
  });
  const crons = ((config.triggers as Record<string, unknown>)?.crons as unknown[]) ?? [];
  crons.forEach((cron, i) => {
    if (i === 0) triggers.schedule = { cron: String(cron) };
    else
      unmapped.push(
        `triggers.crons[${i}] "${cron}": a Kylix function has one schedule; make another function for it`,
      );
  });
  if (Object.keys(triggers).length) spec.triggers = triggers;

  // 5. .dev.vars: development secret values, in a Secret bound key by key.
  const devVars = options.devVars ?? {};
  if (Object.keys(devVars).length) {
    const secret = resourceName(`${name}-secrets`);
    resources.set(`Secret/${secret}`, doc('Secret', secret, { stringData: devVars }));
    for (const key of Object.keys(devVars)) bindings[key] = { secret, key };
    notes.push(
      `.dev.vars: its development values are in Secret ${secret}; set real ones with kylix secret set ${secret} --from-literal KEY=VALUE`,
    );
  }
  if (Object.keys(bindings).length) spec.bindings = bindings;

  // 5b. Static assets: `assets` as it is; Workers Sites' `[site] bucket` as assets the worker
  //     reads itself (through __STATIC_CONTENT), so it runs first, as it did on Workers.
  const assets = mapAssets(config, unmapped);
  if (assets) spec.assets = assets;

  // 5c. Egress: a Worker may fetch() any public address; a Kylix function only what it lists.
  spec.egress = { allow: ['*'] };
  notes.push(
    "egress: fetch() may reach the public internet, as on Workers (spec.egress.allow: ['*']; private and loopback addresses stay refused); list the hosts the worker calls instead to narrow it",
  );

  // 6. Limits, flags and what has no counterpart.
  const cpuMs = (config.limits as Record<string, unknown>)?.cpu_ms;
  if (typeof cpuMs === 'number') spec.limits = { cpuMs: Math.min(300_000, Math.max(10, cpuMs)) };
  else {
    // Workers' paid plans give a request 30 s of CPU unless limits.cpu_ms says otherwise; Kylix's own default is 1 s.
    spec.limits = { cpuMs: WORKERS_DEFAULT_CPU_MS };
    notes.push(
      `limits.cpuMs: ${WORKERS_DEFAULT_CPU_MS} (Workers' default CPU time per request on its paid plans; Kylix's own default is 1000); lower it to bound what one request may spend`,
    );
  }
  const flags = Array.isArray(config.compatibility_flags) ? config.compatibility_flags.map(String) : [];
  const honoured: string[] = [];
  for (const flag of flags) {
    if ((COMPATIBILITY_FLAGS as readonly string[]).includes(flag)) {
      honoured.push(flag);
      notes.push(
        `compatibility_flags: ${flag} is honoured (spec.compatibilityFlags): a global process, and the node:* modules Workers offers`,
      );
    } else unmapped.push(`compatibility_flags: ${flag} has no effect on Kylix`);
  }
  if (honoured.length) spec.compatibilityFlags = [...new Set(honoured)];
  for (const key of Object.keys(config)) {
    if (IGNORED.has(key)) continue;
    unmapped.push(`${key}: ${UNSUPPORTED[key] ?? 'not a setting Kylix knows'}`);
  }

  const documents = [doc('Function', name, spec), ...resources.values()];
  for (const d of documents) validateObject(d, `the generated ${d.kind} ${d.metadata.name}`);
  return { configFile: options.configFile, documents, unmapped, notes };
}

/** The manifest text of an import: a header comment, then one YAML document per object. */
export function manifestText(result: WranglerImport): string {
  const head = `# Written by kylix import wrangler from ${result.configFile}.\n`;
  return head + result.documents.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/**
 * Runs the command: reads DIR's config, writes DIR/kylix.yaml (not over an existing one unless
 * `force`), and returns the lines to print.
 */
export function importWranglerCommand(dir: string, options: { force?: boolean } = {}): string[] {
  const { file, config } = readWranglerConfig(dir);
  const devVarsPath = join(dir, '.dev.vars');
  const result = translateWrangler(config, {
    configFile: file,
    devVars: existsSync(devVarsPath) ? parseDevVars(readFileSync(devVarsPath, 'utf8')) : undefined,
    hasFolder: (rel) => existsSync(join(dir, rel)),
  });
  const out = join(dir, 'kylix.yaml');
  if (existsSync(out) && !options.force)
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${relative(process.cwd(), out) || out} already exists. Pass --force to overwrite it.`,
    );
  writeFileSync(out, manifestText(result));
  const kinds = result.documents.map((d) => `${d.kind}/${d.metadata.name}`).join(', ');
  return [
    `wrote ${relative(process.cwd(), out) || out} from ${file}: ${kinds}`,
    ...result.notes.map((n) => `note: ${n}`),
    ...(result.unmapped.length ? ['not mapped:', ...result.unmapped.map((u) => `  - ${u}`)] : []),
    `run it with: kylix dev ${relative(process.cwd(), dir) || '.'}`,
  ];
}
