/**
 * What `kylix apply -f` (and `kylix dev`) do with manifests: 1. read and validate every document,
 * reporting all errors at once, 2. bundle each Function's source and upload the bundle, 3. apply
 * each object, 4. wait until each changed Function's new revision is ready (or failed), following
 * its status with the API's watch.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { bundleFunction } from '../build/bundle.js';
import { type ErrorCause, KylixError } from '../errors.js';
import { BINDING_RESOURCE_KIND_LIST } from '../resources/binding-kinds.js';
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

/**
 * Bundles and uploads a Function's source; returns the object with spec.bundle set. Code given
 * inline (spec.code) or by reference (spec.bundle) goes as it is: the nodes take it from there.
 */
async function withBundle(client: ApiClient, d: ManifestDocument): Promise<Record<string, unknown>> {
  const spec = d.object.spec as { source?: string };
  if (spec.source === undefined) return d.object;
  const bundle = await bundleFunction(resolve(dirname(d.file), spec.source));
  const head = await client.raw('HEAD', `/kylix/v1/bundles/${bundle.digest}`).catch(() => undefined);
  if (head?.status !== 200) {
    await client.raw('POST', '/kylix/v1/bundles', {
      body: bundle.code,
      headers: { 'content-type': 'application/javascript', 'kylix-digest': bundle.digest },
    });
  }
  return { ...d.object, spec: { ...(d.object.spec as object), bundle: bundle.digest } };
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
