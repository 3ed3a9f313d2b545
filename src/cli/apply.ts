/**
 * What `kylix apply -f` (and `kylix dev`) do with manifests: 1. read and validate every document,
 * reporting all errors at once, 2. bundle each Function's source and upload the bundle, 3. apply
 * each object, 4. wait until each changed Function's new revision is ready (or failed), following
 * its status with the API's watch.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readAssets } from '../build/assets.js';
import { bundleFunction } from '../build/bundle.js';
import { type ErrorCause, type ErrorCode, KylixError } from '../errors.js';
import { BINDING_RESOURCE_KIND_LIST, BINDING_RESOURCE_KINDS } from '../resources/binding-kinds.js';
import { KINDS } from '../resources/kinds.js';
import { type ManifestDocument, readManifests } from '../resources/manifest.js';
import type { KObject } from '../resources/meta.js';
import { validateObject } from '../resources/validate.js';
import type { ApiClient } from './client.js';
import { watchUntil } from './watch.js';

/** The outcome of applying one object. */
export interface Applied {
  kind: string;
  name: string;
  namespace: string;
  result: 'created' | 'configured' | 'unchanged';
  object: KObject;
}

/** Options of applyManifests. */
export interface ApplyOptions {
  /** Wait for changed Functions to be ready (default true). */
  wait?: boolean;
  /** How long to wait, in ms. */
  timeoutMs?: number;
  /** Progress and result lines. */
  out?: (line: string) => void;
}

/** Secrets and the resources functions bind first, so a new revision finds them. */
const ORDER = ['Secret', ...BINDING_RESOURCE_KIND_LIST, 'Function'];

function where(d: ManifestDocument): string {
  return `${d.file}${d.index > 1 ? ` (document ${d.index})` : ''}`;
}

/** Reads and validates every document; throws one error listing every problem in every file. */
export function loadAndValidate(paths: string[]): ManifestDocument[] {
  const docs = readManifests(paths);
  if (docs.length === 0)
    throw new KylixError(
      'ERR_MANIFEST_UNREADABLE',
      `No manifests found in ${paths.join(', ')}. Manifests are .yaml, .yml or .json files.`,
    );
  const causes: ErrorCause[] = [];
  const messages: string[] = [];
  for (const d of docs) {
    try {
      validateObject(d.object, where(d));
    } catch (err) {
      if (!(err instanceof KylixError)) throw err;
      messages.push(err.message);
      for (const c of err.causes) causes.push({ field: `${where(d)}: ${c.field}`, message: c.message });
    }
  }
  if (messages.length > 0) {
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${messages.length} manifest${messages.length === 1 ? ' is' : 's are'} invalid; nothing was applied.\n  ${messages.join('\n  ')}`,
      causes,
    );
  }
  return docs;
}

/** Reads a Database's migrations folder into spec.migrationFiles, in name order. */
function withMigrations(d: ManifestDocument): Record<string, unknown> {
  const spec = (d.object.spec ?? {}) as { migrations?: string };
  if (!spec.migrations) return d.object;
  const dir = resolve(dirname(d.file), spec.migrations);
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.sql'))
      .sort();
  } catch {
    throw new KylixError(
      'ERR_MANIFEST_UNREADABLE',
      `${where(d)}: spec.migrations ${spec.migrations} is not a readable folder.`,
    );
  }
  const migrationFiles = names.map((name) => ({ name, sql: readFileSync(join(dir, name), 'utf8') }));
  return { ...d.object, spec: { ...spec, migrationFiles } };
}

/** Uploads a content-addressed blob (a bundle, an asset, an asset manifest) unless the server has it. */
async function upload(client: ApiClient, digest: string, body: Uint8Array, type: string): Promise<void> {
  const head = await client.raw('HEAD', `/kylix/v1/bundles/${digest}`).catch(() => undefined);
  if (head?.status === 200) return;
  await client.raw('POST', '/kylix/v1/bundles', {
    body,
    headers: { 'content-type': type, 'kylix-digest': digest },
  });
}

/** Uploads at most this many asset files at once. */
const UPLOADS_AT_ONCE = 8;

/** Reads and uploads a Function's assets folder; returns its manifest's digest and the asset paths. */
async function withAssets(
  client: ApiClient,
  d: ManifestDocument,
  directory: string,
): Promise<{ digest: string; paths: string[] }> {
  const dir = resolve(dirname(d.file), directory);
  const assets = readAssets(dir, directory);
  const queue = [...assets.files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift())
      await upload(client, f.digest, readFileSync(f.file), 'application/octet-stream');
  };
  await Promise.all(Array.from({ length: UPLOADS_AT_ONCE }, worker));
  await upload(client, assets.manifestDigest, assets.manifestBytes, 'application/json');
  return { digest: assets.manifestDigest, paths: assets.files.map((f) => f.path) };
}

/**
 * Bundles and uploads a Function's code (and assets); returns the object with spec.bundle set.
 * Code given inline (spec.code) or by reference (spec.bundle) goes as it is: the nodes take it
 * from there.
 */
async function withBundle(client: ApiClient, d: ManifestDocument): Promise<Record<string, unknown>> {
  const spec = d.object.spec as {
    source?: string;
    assets?: { directory?: string };
    compatibilityFlags?: string[];
  };
  if (spec.source === undefined) return d.object;
  const assets =
    typeof spec.assets?.directory === 'string'
      ? await withAssets(client, d, spec.assets.directory)
      : undefined;
  const bundle = await bundleFunction(resolve(dirname(d.file), spec.source), {
    root: dirname(resolve(d.file)),
    ...(assets ? { staticContent: assets.paths } : {}),
    nodeCompat: spec.compatibilityFlags?.some((f) => f.startsWith('nodejs_compat')) ?? false,
  });
  await upload(client, bundle.digest, bundle.code, 'application/javascript');
  return {
    ...d.object,
    spec: {
      ...(d.object.spec as object),
      bundle: bundle.digest,
      ...(assets ? { assets: { ...spec.assets, manifest: assets.digest } } : {}),
    },
  };
}

/** Applies every manifest under `paths`; see the file comment. Resolves false if a Function failed. */
export async function applyManifests(
  client: ApiClient,
  paths: string[],
  options: ApplyOptions = {},
): Promise<{ ok: boolean; applied: Applied[] }> {
  const out = options.out ?? ((l: string) => console.log(l));
  const docs = loadAndValidate(paths).sort(
    (a, b) => ORDER.indexOf(String(a.object.kind)) - ORDER.indexOf(String(b.object.kind)),
  );

  // Build every function before applying anything, so a build error changes nothing.
  const bodies: Record<string, unknown>[] = [];
  const buildCauses: ErrorCause[] = [];
  const slow = setTimeout(() => out('Bundling functions…'), 1000).unref();
  for (const d of docs) {
    if (d.object.kind === 'Database') {
      bodies.push(withMigrations(d));
      continue;
    }
    if (d.object.kind !== 'Function') {
      bodies.push(d.object);
      continue;
    }
    try {
      bodies.push(await withBundle(client, d));
    } catch (err) {
      if (!(err instanceof KylixError) || err.code !== 'ERR_BUILD_FAILED') throw err;
      buildCauses.push(...(err.causes.length ? err.causes : [{ field: where(d), message: err.message }]));
    }
  }
  clearTimeout(slow);
  if (buildCauses.length > 0)
    throw new KylixError('ERR_BUILD_FAILED', 'The build failed; nothing was applied.', buildCauses);

  // All or nothing: every document passes the server's validation and admission (dry run) and
  // binds only resources that exist or come with it, before any is written.
  await preflight(client, bodies);

  const applied: Applied[] = [];
  for (const body of bodies) {
    const info = KINDS[String(body.kind)]!;
    const meta = body.metadata as { name: string; namespace?: string };
    const namespace = meta.namespace ?? client.config.namespace;
    const { data, headers } = await client.json(
      'PATCH',
      client.path(info.plural, meta.name, namespace),
      body,
      'application/apply-patch+yaml',
    );
    const result = (headers.get('kylix-apply-result') ?? 'configured') as Applied['result'];
    applied.push({ kind: info.kind, name: meta.name, namespace, result, object: data });
    out(`${info.singular}/${meta.name} ${result}`);
  }

  let ok = true;
  if (options.wait !== false) {
    for (const a of applied) {
      if (!WAITED_FOR.has(a.kind)) continue;
      ok = (await waitForReady(client, a, options.timeoutMs ?? 60_000, out)) && ok;
    }
  }
  return { ok, applied };
}

/** The namespace and name of a body, and its kind's API names. */
function target(client: ApiClient, body: Record<string, unknown>) {
  const info = KINDS[String(body.kind)]!;
  const meta = body.metadata as { name: string; namespace?: string };
  return { info, name: meta.name, namespace: meta.namespace ?? client.config.namespace };
}

/** The resource kind each binding key binds (secrets too). */
const BOUND_KINDS: Record<string, string> = { ...BINDING_RESOURCE_KINDS, secret: 'Secret' };

/**
 * Checks every document before any is written: 1. each Function's bindings name resources that
 * exist or are in this apply, 2. the server validates and admits each (dryRun=All: route conflicts,
 * namespaces…). Throws one error listing every problem, and nothing was applied.
 */
async function preflight(client: ApiClient, bodies: Record<string, unknown>[]): Promise<void> {
  const causes: ErrorCause[] = [];
  const coming = new Set(
    bodies.map((b) => {
      const t = target(client, b);
      return `${t.info.kind}/${t.namespace}/${t.name}`;
    }),
  );
  const exists = new Map<string, Promise<boolean>>();
  for (const body of bodies) {
    if (body.kind !== 'Function') continue;
    const t = target(client, body);
    const bindings = (body.spec as { bindings?: Record<string, Record<string, string>> }).bindings ?? {};
    for (const [env, binding] of Object.entries(bindings)) {
      for (const [key, kind] of Object.entries(BOUND_KINDS)) {
        const ref = binding[key];
        if (typeof ref !== 'string') continue;
        const id = `${kind}/${t.namespace}/${ref}`;
        if (coming.has(id)) continue;
        if (!exists.has(id))
          exists.set(
            id,
            client
              .json('GET', client.path(KINDS[kind]!.plural, ref, t.namespace))
              .then(() => true)
              .catch((err: unknown) => {
                if (err instanceof KylixError && err.code === 'ERR_NOT_FOUND') return false;
                throw err;
              }),
          );
        if (!(await exists.get(id)))
          causes.push({
            field: `function/${t.name}: spec.bindings.${env}`,
            message: `${kind} "${ref}" does not exist in namespace "${t.namespace}" and is not in these manifests`,
          });
      }
    }
  }
  if (causes.length > 0)
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `${causes.length === 1 ? 'A binding names a resource' : 'Bindings name resources'} that do${causes.length === 1 ? 'es' : ''} not exist; nothing was applied. Add ${causes.length === 1 ? 'it' : 'them'} to the manifests (or apply ${causes.length === 1 ? 'it' : 'them'} first), or fix spec.bindings.`,
      causes,
    );
  const codes = new Set<ErrorCode>();
  const messages: string[] = [];
  const refused: KylixError[] = [];
  for (const body of bodies) {
    const t = target(client, body);
    try {
      await client.json(
        'PATCH',
        `${client.path(t.info.plural, t.name, t.namespace)}?dryRun=All`,
        body,
        'application/apply-patch+yaml',
      );
    } catch (err) {
      if (!(err instanceof KylixError) || err.code === 'ERR_API_UNREACHABLE' || err.code === 'ERR_INTERNAL')
        throw err;
      const label = `${t.info.singular}/${t.name}`;
      refused.push(err);
      codes.add(err.code);
      messages.push(`${label}: ${err.message}`);
      for (const c of err.causes) causes.push({ field: `${label}: ${c.field}`, message: c.message });
    }
  }
  // One refusal reads as the server wrote it; several are each labelled with their document.
  const only = refused.length === 1 ? refused[0] : undefined;
  if (only)
    throw new KylixError(
      only.code,
      `${only.message}${bodies.length > 1 ? ' Nothing was applied.' : ''}`,
      only.causes,
    );
  if (messages.length > 0)
    throw new KylixError(
      codes.size === 1 ? [...codes][0]! : 'ERR_MANIFEST_INVALID',
      `${messages.join('\n  ')}\n  Nothing was applied.`,
      causes,
    );
}

/** Kinds whose status says when they are usable: functions started, resources provisioned. */
const WAITED_FOR = new Set<string>(['Function', ...BINDING_RESOURCE_KIND_LIST]);

/** What a ready object's line says: a function's revision, a resource's backend. */
function readyNote(
  kind: string,
  status: { latestReadyRevision?: number; backend?: string; migrations?: string[] } | undefined,
): string {
  if (kind === 'Function') return `revision ${status?.latestReadyRevision}`;
  return `${status?.backend ?? 'unknown'} backend${status?.migrations?.length ? `, ${status.migrations.length} migration(s)` : ''}`;
}

/** The status fields the wait reads. */
interface WaitedStatus {
  observedGeneration?: number;
  conditions?: { type: string; status: string; message: string }[];
  latestReadyRevision?: number;
  backend?: string;
  migrations?: string[];
}

/**
 * Waits until the object's status reflects its generation, following its changes with the API's
 * watch (src/cli/watch.ts); prints ready or why not.
 */
export async function waitForReady(
  client: ApiClient,
  a: Applied,
  timeoutMs: number,
  out: (l: string) => void,
): Promise<boolean> {
  const start = Date.now();
  const info = KINDS[a.kind]!;
  const label = `${info.singular}/${a.name}`;
  const slow = setTimeout(() => out(`Waiting for ${label} to become ready…`), 1000).unref();
  const decide = (o: KObject | undefined): boolean | undefined => {
    if (!o) {
      out(`${label} NOT ready: it was deleted while waiting for it.`);
      return false;
    }
    const status = o.status as WaitedStatus | undefined;
    const ready = status?.conditions?.find((c) => c.type === 'Ready');
    if ((status?.observedGeneration ?? 0) < o.metadata.generation || !ready || ready.status === 'Unknown')
      return undefined;
    if (ready.status === 'True') {
      if (a.result !== 'unchanged')
        out(`${label} ready: ${readyNote(a.kind, status)} (${Date.now() - start} ms)`);
      return true;
    }
    out(`${label} NOT ready: ${ready.message}`);
    return false;
  };
  try {
    return await watchUntil(
      client,
      { plural: info.plural, namespace: a.namespace, name: a.name, label },
      decide,
      { timeoutMs, what: 'to become ready' },
    );
  } catch (err) {
    if (!(err instanceof KylixError && err.code === 'ERR_TIMEOUT')) throw err;
    out(
      `${label} did not become ready within ${timeoutMs / 1000} s; see kylix describe ${info.singular} ${a.name}`,
    );
    return false;
  } finally {
    clearTimeout(slow);
  }
}

/** Deletes every object named in the manifests under `paths`. */
export async function deleteManifests(
  client: ApiClient,
  paths: string[],
  out: (l: string) => void,
  ignoreNotFound = false,
  purge = false,
): Promise<boolean> {
  let ok = true;
  for (const d of readManifests(paths).reverse()) {
    const info = KINDS[String(d.object.kind)];
    const meta = d.object.metadata as { name?: string; namespace?: string } | undefined;
    if (!info || !meta?.name) continue;
    try {
      const path = client.path(info.plural, meta.name, meta.namespace ?? client.config.namespace);
      await client.raw('DELETE', `${path}${purge ? '?purge=true' : ''}`);
      out(`${info.singular}/${meta.name} deleted`);
    } catch (err) {
      if (err instanceof KylixError && err.code === 'ERR_NOT_FOUND') {
        if (!ignoreNotFound) {
          ok = false;
          console.error(`Error: ${info.singular}/${meta.name} not found`);
        }
      } else throw err;
    }
  }
  return ok;
}
