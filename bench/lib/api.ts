/**
 * Talks to the Kylix control API the way any Kubernetes-style client does: server-side apply
 * (PATCH application/apply-patch+yaml), get, list, bundle upload; and bundles function sources with
 * the platform's own bundler, so digests match what `kylix apply` would upload.
 */
import { bundleFunction } from '../../src/build/bundle.js';

const GROUP = '/apis/kylix.dev/v1/namespaces/default';

/** A Kylix object as the API returns it (only what the bench reads). */
export interface ApiObject {
  metadata: { name: string; generation: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    latestReadyRevision?: number;
    conditions?: { type: string; status: string; reason?: string; message: string }[];
  };
}

async function call(
  method: string,
  url: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  const res = await fetch(url, { method, body, headers });
  if (res.status >= 400)
    throw new Error(`${method} ${url} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  return res;
}

/** Bundles a function source file; returns its code and content digest. */
export async function bundle(source: string): Promise<{ code: Buffer; digest: string }> {
  const b = await bundleFunction(source);
  return { code: b.code, digest: b.digest };
}

/** Uploads a bundle (as `kylix apply` does) so Functions can name it in spec.bundle. */
export async function uploadBundle(apiUrl: string, b: { code: Buffer; digest: string }): Promise<void> {
  await call('POST', `${apiUrl}/kylix/v1/bundles`, b.code, {
    'content-type': 'application/javascript',
    'kylix-digest': b.digest,
  });
}

/** Server-side apply of one object; resolves with the stored object. */
export async function applyObject(
  apiUrl: string,
  plural: string,
  object: { kind: string; metadata: { name: string } },
): Promise<ApiObject> {
  const body = JSON.stringify({ apiVersion: 'kylix.dev/v1', ...object });
  const res = await call('PATCH', `${apiUrl}${GROUP}/${plural}/${object.metadata.name}`, body, {
    'content-type': 'application/apply-patch+yaml',
  });
  return (await res.json()) as ApiObject;
}

/** Gets one object. */
export async function getObject(apiUrl: string, plural: string, name: string): Promise<ApiObject> {
  return (await (await call('GET', `${apiUrl}${GROUP}/${plural}/${name}`)).json()) as ApiObject;
}

/** Lists every object of a kind in the default namespace. */
export async function listObjects(apiUrl: string, plural: string): Promise<ApiObject[]> {
  return ((await (await call('GET', `${apiUrl}${GROUP}/${plural}`)).json()) as { items: ApiObject[] }).items;
}

/** The URL of a kind's list in the default namespace. */
export function listUrl(apiUrl: string, plural: string): string {
  return `${apiUrl}${GROUP}/${plural}`;
}

/** A Function manifest serving `bundleDigest` at `path`, with optional spec.scaling. */
export function functionObject(
  name: string,
  path: string,
  bundleDigest?: string,
  scaling?: { idleSeconds?: number; minInstances?: number; maxInstances?: number },
) {
  return {
    kind: 'Function',
    metadata: { name },
    spec: {
      source: './bench.ts',
      ...(bundleDigest ? { bundle: bundleDigest } : {}),
      routes: [{ path }],
      ...(scaling ? { scaling } : {}),
    },
  };
}

/** Live figures of one revision of a function, from GET …/functions/<name>/stats. */
export interface RevisionStats {
  revision: number;
  instances: number;
  inFlight: number;
  coldStarts: number;
  coldStartP50Ms: number | null;
  coldStartP99Ms: number | null;
}

/** The running instances and recorded cold starts of each of a function's revisions. */
export async function functionStats(apiUrl: string, name: string): Promise<RevisionStats[]> {
  const res = await call('GET', `${apiUrl}${GROUP}/functions/${name}/stats`);
  return ((await res.json()) as { revisions: RevisionStats[] }).revisions;
}

/** How many instances a function runs right now, over all its revisions. */
export async function instanceCount(apiUrl: string, name: string): Promise<number> {
  return (await functionStats(apiUrl, name)).reduce((n, r) => n + r.instances, 0);
}

/** True when the Function's status reflects its generation and says Ready=True; throws when it failed. */
export function isReady(fn: ApiObject): boolean {
  const ready = fn.status?.conditions?.find((c) => c.type === 'Ready');
  if ((fn.status?.observedGeneration ?? 0) < fn.metadata.generation || !ready || ready.status === 'Unknown')
    return false;
  if (ready.status === 'False')
    throw new Error(`function ${fn.metadata.name} is not ready: ${ready.message}`);
  return true;
}

/** Waits until every Function in the default namespace is ready (or `timeoutMs` passes). */
export async function waitAllReady(
  apiUrl: string,
  expected: number,
  timeoutMs: number,
  /** When given, functions that failed to start are put here (name → reason) instead of throwing. */
  failed?: Map<string, string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const items = await listObjects(apiUrl, 'functions');
    let ready = 0;
    for (const fn of items) {
      try {
        if (isReady(fn)) ready++;
      } catch (err) {
        if (!failed) throw err;
        failed.set(fn.metadata.name, (err as Error).message);
        ready++;
      }
    }
    if (items.length >= expected && ready === items.length) return;
    if (Date.now() > deadline)
      throw new Error(`only ${ready} of ${expected} functions became ready within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The instance start time the platform recorded on a Revision ("Started in N ms"), if any. */
export function revisionStartMs(revision: ApiObject): number | undefined {
  const message = revision.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
  const m = /Started in (\d+) ms/.exec(message);
  return m ? Number(m[1]) : undefined;
}
