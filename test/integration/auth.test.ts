/**
 * Scoped access through a real node: every endpoint of the control API against every kind of
 * caller (no token, a bad one, an expired one, a revoked one, admin, edit and view in namespace A,
 * edit in namespace B), the audit log of mutations (who, what, result, never a secret value), the
 * `kylix token` and `kylix audit` commands, and a fleet sharing one token set and one audit log.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyManifests } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import { loadInstallation } from '../../src/config/installation.js';
import type { AuditEntry, AuditEntryList, TokenObject } from '../../src/resources/access.js';
import { eventually } from '../helpers/eventually.js';
import { startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { scratchSchema, TEST_POSTGRES_URL } from '../helpers/postgres.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
const CANARY = 'canary-audit-7f3e-do-not-leak';
const V1 = '/apis/kylix.dev/v1';
const A = 'team-a';
const B = 'team-b';

const resources = (ns: string) => `apiVersion: kylix.dev/v1
kind: Function
metadata: { name: hello, namespace: ${ns} }
spec:
  source: ./hello.ts
  routes: [{ path: /${ns}/hello }]
---
apiVersion: kylix.dev/v1
kind: Secret
metadata: { name: creds, namespace: ${ns} }
spec:
  stringData: { password: ${CANARY} }
---
apiVersion: kylix.dev/v1
kind: KeyValue
metadata: { name: kv, namespace: ${ns} }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Queue
metadata: { name: q, namespace: ${ns} }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Queue
metadata: { name: q2, namespace: ${ns} }
spec: {}
---
apiVersion: kylix.dev/v1
kind: Bucket
metadata: { name: b, namespace: ${ns} }
spec: {}
${
  // One Database (a PGlite engine each, slow to start on a busy machine) is enough: namespace A's.
  ns === A
    ? `---\napiVersion: kylix.dev/v1\nkind: Database\nmetadata: { name: db, namespace: ${ns} }\nspec: {}\n`
    : ''
}`;
const HELLO = "export default { fetch(req) { return new Response('hello'); } };\n";

/** The callers of the matrix. */
type Caller = 'none' | 'bad' | 'expired' | 'revoked' | 'admin' | 'editA' | 'viewA' | 'editB';
const CALLERS: Caller[] = ['none', 'bad', 'expired', 'revoked', 'admin', 'editA', 'viewA', 'editB'];

/** Who may do an endpoint: any valid token, edit tokens (bundles), admin only, or namespaced. */
type Who = 'any' | 'editor' | 'admin' | 'edit' | 'view';

interface Endpoint {
  what: string;
  method: string;
  /** Built per caller, so each create names its own object. */
  path: (caller: Caller) => string;
  body?: (caller: Caller) => string;
  type?: string;
  who: Who;
  /** A streaming answer: read the status, then stop. */
  stream?: boolean;
}

const ns = `${V1}/namespaces/${A}`;
const obj = (kind: string, name: string, spec: unknown = {}) =>
  JSON.stringify({ apiVersion: 'kylix.dev/v1', kind, metadata: { name }, spec });
const KIND_OF: Record<string, string> = {
  functions: 'Function',
  databases: 'Database',
  keyvalues: 'KeyValue',
  queues: 'Queue',
  buckets: 'Bucket',
  secrets: 'Secret',
  revisions: 'Revision',
  events: 'Event',
};
const EXISTING: Record<string, string> = {
  functions: 'hello',
  databases: 'db',
  keyvalues: 'kv',
  queues: 'q',
  buckets: 'b',
  secrets: 'creds',
  revisions: 'hello-1',
  events: 'nope',
};
const specOf = (plural: string) => (plural === 'secrets' ? { stringData: { k: 'v' } } : {});
const nameFor = (c: Caller) => `m-${c.toLowerCase()}`;

/** Every route of the API (api.ts, api-data.ts, api-secrets.ts, api-access.ts), with who may call it. */
function endpoints(): Endpoint[] {
  const e: Endpoint[] = [
    { what: 'version', method: 'GET', path: () => '/version', who: 'any' },
    { what: 'API groups', method: 'GET', path: () => '/apis', who: 'any' },
    { what: 'API resources', method: 'GET', path: () => V1, who: 'any' },
    { what: 'bundle exists', method: 'HEAD', path: () => `/kylix/v1/bundles/${'0'.repeat(64)}`, who: 'any' },
    {
      what: 'bundle upload',
      method: 'POST',
      path: () => '/kylix/v1/bundles',
      body: (c) => `export default {}; // ${c}`,
      type: 'application/javascript',
      who: 'editor',
    },
    { what: 'secret reseal', method: 'POST', path: () => '/kylix/v1/secrets/reseal', who: 'admin' },
    { what: 'secret key rotation', method: 'POST', path: () => '/kylix/v1/secrets/rotate-key', who: 'admin' },
    { what: 'tokens list', method: 'GET', path: () => `${V1}/tokens`, who: 'admin' },
    {
      what: 'token create',
      method: 'POST',
      path: () => `${V1}/tokens`,
      body: () => JSON.stringify({ spec: { role: 'view', namespaces: [A], description: 'matrix' } }),
      type: 'application/json',
      who: 'admin',
    },
    { what: 'token get', method: 'GET', path: () => `${V1}/tokens/t-000000000000`, who: 'admin' },
    { what: 'token revoke', method: 'DELETE', path: () => `${V1}/tokens/t-000000000000`, who: 'admin' },
    { what: 'audit', method: 'GET', path: () => `${V1}/audit?limit=5`, who: 'admin' },
  ];
  for (const plural of Object.keys(KIND_OF)) {
    const kind = KIND_OF[plural] ?? '';
    const read: Who = plural === 'secrets' ? 'edit' : 'view';
    e.push(
      { what: `${plural} across namespaces`, method: 'GET', path: () => `${V1}/${plural}`, who: 'admin' },
      { what: `${plural} list`, method: 'GET', path: () => `${ns}/${plural}`, who: read },
      {
        what: `${plural} watch`,
        method: 'GET',
        path: () => `${ns}/${plural}?watch=true`,
        who: read,
        stream: true,
      },
      { what: `${plural} get`, method: 'GET', path: () => `${ns}/${plural}/${EXISTING[plural]}`, who: read },
      {
        what: `${plural} create`,
        method: 'POST',
        path: () => `${ns}/${plural}`,
        body: (c) => obj(kind, nameFor(c), specOf(plural)),
        type: 'application/json',
        who: 'edit',
      },
      {
        what: `${plural} replace`,
        method: 'PUT',
        path: (c) => `${ns}/${plural}/${nameFor(c)}`,
        body: (c) => obj(kind, nameFor(c), specOf(plural)),
        type: 'application/json',
        who: 'edit',
      },
      {
        what: `${plural} merge patch`,
        method: 'PATCH',
        path: (c) => `${ns}/${plural}/${nameFor(c)}`,
        body: () => JSON.stringify({ metadata: { labels: { patched: 'yes' } } }),
        type: 'application/merge-patch+json',
        who: 'edit',
      },
      {
        what: `${plural} apply`,
        method: 'PATCH',
        path: (c) => `${ns}/${plural}/${nameFor(c)}-applied`,
        body: (c) => obj(kind, `${nameFor(c)}-applied`, specOf(plural)),
        type: 'application/apply-patch+yaml',
        who: 'edit',
      },
      {
        what: `${plural} delete`,
        method: 'DELETE',
        path: (c) => `${ns}/${plural}/${nameFor(c)}`,
        who: 'edit',
      },
    );
  }
  const json = 'application/json';
  e.push(
    { what: 'function log', method: 'GET', path: () => `${ns}/functions/hello/log`, who: 'view' },
    {
      what: 'function log follow',
      method: 'GET',
      path: () => `${ns}/functions/hello/log?follow=true`,
      who: 'view',
      stream: true,
    },
    { what: 'function stats', method: 'GET', path: () => `${ns}/functions/hello/stats`, who: 'view' },
    { what: 'invoke GET', method: 'GET', path: () => `${ns}/functions/hello/proxy/x`, who: 'edit' },
    {
      what: 'invoke POST',
      method: 'POST',
      path: () => `${ns}/functions/hello/proxy/x`,
      body: () => 'hi',
      who: 'edit',
    },
    { what: 'database health', method: 'GET', path: () => `${ns}/databases/db/health`, who: 'view' },
    { what: 'keyvalue health', method: 'GET', path: () => `${ns}/keyvalues/kv/health`, who: 'view' },
    { what: 'queue health', method: 'GET', path: () => `${ns}/queues/q/health`, who: 'view' },
    { what: 'bucket health', method: 'GET', path: () => `${ns}/buckets/b/health`, who: 'view' },
    { what: 'kv list', method: 'GET', path: () => `${ns}/keyvalues/kv/keys`, who: 'edit' },
    { what: 'kv get', method: 'GET', path: () => `${ns}/keyvalues/kv/keys/k1`, who: 'edit' },
    {
      what: 'kv put',
      method: 'PUT',
      path: (c) => `${ns}/keyvalues/kv/keys/${c}`,
      body: () => 'v',
      type: 'text/plain',
      who: 'edit',
    },
    { what: 'kv delete', method: 'DELETE', path: (c) => `${ns}/keyvalues/kv/keys/${c}`, who: 'edit' },
    {
      what: 'sql query',
      method: 'POST',
      path: () => `${ns}/databases/db/query`,
      body: () => JSON.stringify({ sql: 'SELECT 1 AS one' }),
      type: json,
      who: 'edit',
    },
    {
      what: 'queue send',
      method: 'POST',
      path: () => `${ns}/queues/q/messages`,
      body: () => JSON.stringify({ body: { hi: 1 } }),
      type: json,
      who: 'edit',
    },
    { what: 'queue peek', method: 'GET', path: () => `${ns}/queues/q/messages`, who: 'edit' },
    { what: 'queue stats', method: 'GET', path: () => `${ns}/queues/q/stats`, who: 'view' },
    {
      what: 'queue redrive',
      method: 'POST',
      path: () => `${ns}/queues/q2/redrive`,
      body: () => JSON.stringify({ to: 'q2' }),
      type: json,
      who: 'edit',
    },
    { what: 'bucket list', method: 'GET', path: () => `${ns}/buckets/b/objects`, who: 'edit' },
    { what: 'bucket get', method: 'GET', path: () => `${ns}/buckets/b/objects/o1`, who: 'edit' },
    {
      what: 'bucket put',
      method: 'PUT',
      path: (c) => `${ns}/buckets/b/objects/${c}`,
      body: () => 'data',
      type: 'text/plain',
      who: 'edit',
    },
  );
  return e;
}

/** What a caller should get from an endpoint: 401, 403, or through (anything else but a 5xx). */
function expected(caller: Caller, who: Who): 401 | 403 | 'through' {
  if (caller === 'none' || caller === 'bad' || caller === 'expired' || caller === 'revoked') return 401;
  if (caller === 'admin' || who === 'any') return 'through';
  if (who === 'admin') return 403;
  if (who === 'editor') return caller === 'viewA' ? 403 : 'through';
  // Namespaced, in namespace A.
  if (caller === 'editB') return 403;
  if (caller === 'editA') return 'through';
  return who === 'view' ? 'through' : 403;
}

async function call(
  base: string,
  ep: Endpoint,
  caller: Caller,
  bearer: string | undefined,
): Promise<{ status: number; body: string; requestId: string | null }> {
  const headers: Record<string, string> = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (ep.type) headers['content-type'] = ep.type;
  const abort = new AbortController();
  const res = await fetch(`${base}${ep.path(caller)}`, {
    method: ep.method,
    headers,
    body: ep.body?.(caller),
    signal: abort.signal,
  });
  const requestId = res.headers.get('kylix-request-id');
  if (ep.stream && res.status === 200) {
    abort.abort();
    return { status: res.status, body: '', requestId };
  }
  return { status: res.status, body: await res.text(), requestId };
}

async function createToken(
  base: string,
  bearer: string,
  spec: Record<string, unknown>,
): Promise<TokenObject> {
  const res = await fetch(`${base}${V1}/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ spec }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as TokenObject;
}

async function auditOf(base: string, query = ''): Promise<AuditEntry[]> {
  const res = await fetch(`${base}${V1}/audit${query}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as AuditEntryList).items;
}

describe('scoped access', () => {
  let node: TestNode;
  let base: string;
  const bearer: Partial<Record<Caller, string>> = {};
  const ids: Partial<Record<Caller, string>> = {};
  before(async () => {
    node = await startNode({ token: ADMIN, namespace: A });
    base = node.platform.apiUrl;
    const dir = writeProject({ 'a.yaml': resources(A), 'b.yaml': resources(B), 'hello.ts': HELLO });
    const out: string[] = [];
    const { ok } = await applyManifests(node.client, [dir], { out: (l) => out.push(l) });
    assert.ok(ok, out.join('\n'));
    const make = async (c: Caller, spec: Record<string, unknown>) => {
      const t = await createToken(base, ADMIN, { description: c, ...spec });
      bearer[c] = t.status.token;
      ids[c] = t.metadata.name;
    };
    await make('editA', { role: 'edit', namespaces: [A] });
    await make('viewA', { role: 'view', namespaces: [A] });
    await make('editB', { role: 'edit', namespaces: [B] });
    await make('revoked', { role: 'edit', namespaces: [A] });
    await make('expired', { role: 'admin', expirationSeconds: 1 });
    bearer.admin = ADMIN;
    bearer.bad = `kx1.${ids.editA}.${'x'.repeat(43)}`;
    const revoke = await fetch(`${base}${V1}/tokens/${ids.revoked}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(revoke.status, 200);
    // The one-second TTL runs out: wait for it rather than for a fixed time.
    await eventually(
      async () =>
        (await fetch(`${base}/version`, { headers: { authorization: `Bearer ${bearer.expired}` } }))
          .status === 401,
      5000,
      100,
    );
  });
  after(async () => {
    await node?.destroy();
  });

  it('answers every endpoint for every caller as the role table says (401, 403 or through)', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const ep of endpoints()) {
      for (const caller of CALLERS) {
        const { status, body } = await call(base, ep, caller, bearer[caller]);
        const want = expected(caller, ep.who);
        checked++;
        const ok = want === 'through' ? status !== 401 && status !== 403 && status < 500 : status === want;
        if (!ok)
          wrong.push(
            `${ep.what} (${ep.method}) as ${caller}: ${status}, wanted ${want} ${body.slice(0, 160)}`,
          );
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(checked >= 8 * 80, `only ${checked} checks`);
  });

  it('lets edit and view tokens act in their namespace only: team-b refuses team-a tokens', async () => {
    const paths = [`${V1}/namespaces/${B}/functions`, `${V1}/namespaces/${B}/functions/hello/log`];
    for (const p of paths)
      for (const c of ['editA', 'viewA'] as const) {
        const res = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${bearer[c]}` } });
        assert.equal(res.status, 403, `${c} ${p}`);
      }
    const own = await fetch(`${base}${V1}/namespaces/${B}/secrets/creds`, {
      headers: { authorization: `Bearer ${bearer.editB}` },
    });
    assert.equal(own.status, 200);
    assert.ok(!(await own.text()).includes(CANARY), 'a secret value came back');
  });

  it('refuses with a Kubernetes Status that names the role and the namespace', async () => {
    const res = await fetch(`${base}${V1}/namespaces/${B}/secrets`, {
      headers: { authorization: `Bearer ${bearer.viewA}` },
    });
    assert.equal(res.status, 403);
    const status = (await res.json()) as { kind: string; reason: string; code: number; message: string };
    assert.equal(status.kind, 'Status');
    assert.equal(status.reason, 'Forbidden');
    assert.equal(status.code, 403);
    assert.match(status.message, /role view in team-a/);
    assert.match(status.message, /namespace "team-b"/);
    const anonymous = await fetch(`${base}${V1}/namespaces/${A}/functions`);
    assert.equal(((await anonymous.json()) as { reason: string }).reason, 'Unauthorized');
  });

  it('says why a token that was valid is refused: revoked, expired', async () => {
    const revoked = await fetch(`${base}/version`, {
      headers: { authorization: `Bearer ${bearer.revoked}` },
    });
    assert.match(((await revoked.json()) as { message: string }).message, /revoked/);
    const expired = await fetch(`${base}/version`, {
      headers: { authorization: `Bearer ${bearer.expired}` },
    });
    assert.match(((await expired.json()) as { message: string }).message, /expired/);
  });

  it('lists tokens without any secret or hash', async () => {
    const res = await fetch(`${base}${V1}/tokens`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const text = await res.text();
    const list = JSON.parse(text) as { kind: string; items: TokenObject[] };
    assert.equal(list.kind, 'TokenList');
    for (const c of ['editA', 'viewA', 'editB', 'revoked'] as const) {
      const t = list.items.find((i) => i.metadata.name === ids[c]);
      assert.ok(t, c);
      assert.equal(t.status.revoked, c === 'revoked');
      assert.ok(!text.includes((bearer[c] ?? '').split('.')[2] ?? '-'), `${c}'s secret is listed`);
    }
    assert.ok(!text.includes('sha256'), 'a hash is listed');
    assert.ok(!text.includes(ADMIN));
    assert.equal(list.items.find((i) => i.metadata.name === ids.expired)?.status.expired, true);
  });

  it('validates a token request, naming each bad field', async () => {
    const res = await fetch(`${base}${V1}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { role: 'owner', namespaces: ['Bad_NS'], extra: 1 } }),
    });
    assert.equal(res.status, 422);
    const fields = ((await res.json()) as { details: { causes: { field: string }[] } }).details.causes.map(
      (c) => c.field,
    );
    assert.ok(fields.includes('spec.role'), fields.join());
    assert.ok(
      fields.some((f) => f.startsWith('spec.namespaces')),
      fields.join(),
    );
    const noNs = await fetch(`${base}${V1}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { role: 'edit' } }),
    });
    assert.equal(noNs.status, 422);
  });

  it('audits every mutation with who, what and the result, and never a secret value', async () => {
    const marker = `audit-${randomBytes(3).toString('hex')}`;
    const as = (c: Caller) => ({ authorization: `Bearer ${bearer[c]}`, 'content-type': 'application/json' });
    const created = await fetch(`${base}${V1}/namespaces/${A}/secrets`, {
      method: 'POST',
      headers: as('editA'),
      body: obj('Secret', marker, { stringData: { password: CANARY } }),
    });
    assert.equal(created.status, 201);
    const replaced = await fetch(`${base}${V1}/namespaces/${A}/secrets/${marker}`, {
      method: 'PUT',
      headers: as('editA'),
      body: obj('Secret', marker, { stringData: { password: `${CANARY}-2` } }),
    });
    assert.equal(replaced.status, 200);
    const denied = await fetch(`${base}${V1}/namespaces/${A}/secrets/${marker}`, {
      method: 'DELETE',
      headers: as('viewA'),
    });
    assert.equal(denied.status, 403);
    const deleted = await fetch(`${base}${V1}/namespaces/${A}/secrets/${marker}`, {
      method: 'DELETE',
      headers: as('editA'),
    });
    assert.equal(deleted.status, 200);
    const kv = await fetch(`${base}${V1}/namespaces/${A}/keyvalues/kv/keys/${marker}`, {
      method: 'PUT',
      headers: { ...as('editA'), 'content-type': 'text/plain' },
      body: CANARY,
    });
    assert.ok(kv.status < 300);
    const token = await createToken(base, ADMIN, { role: 'view', namespaces: [A], description: marker });

    const entries = await auditOf(base);
    const mine = entries.filter((e) => e.name === marker || e.path.endsWith(`/${marker}`));
    const summary = mine.map((e) => `${e.user.name} ${e.verb} ${e.kind ?? e.resource} ${e.code}`);
    assert.deepEqual(summary.slice(0, 4), [
      'editA create Secret 201',
      'editA update Secret 200',
      'viewA delete Secret 403',
      'editA delete Secret 200',
    ]);
    assert.match(summary[4] ?? '', /^editA update KeyValue 20\d$/);
    assert.equal(summary.length, 5);
    const first = mine[0] as AuditEntry;
    assert.equal(first.user.id, ids.editA);
    assert.equal(first.namespace, A);
    assert.equal(first.requestId, created.headers.get('kylix-request-id'));
    assert.ok(Date.parse(first.time) > Date.now() - 60_000);
    const tokenEntry = entries.find((e) => e.resource === 'tokens' && e.name === token.metadata.name);
    assert.equal(tokenEntry?.verb, 'create');
    assert.equal(tokenEntry?.user.id, 'admin');

    // The matrix's mutations are there too, refused ones included.
    assert.ok(entries.some((e) => e.verb === 'rotate-key' && e.code === 403 && e.user.name === 'editA'));
    assert.ok(entries.some((e) => e.verb === 'apply' && e.kind === 'Function' && e.user.name === 'editA'));
    assert.ok(entries.some((e) => e.verb === 'invoke' && e.user.name === 'admin (bootstrap)'));
    // An invocation's entry has the request id the function's answer carries.
    const invoked = await fetch(`${base}${V1}/namespaces/${A}/functions/hello/proxy/`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(await invoked.text(), 'hello');
    const invokeId = invoked.headers.get('kylix-request-id');
    assert.ok(invokeId);
    assert.equal((await auditOf(base, '?limit=1'))[0]?.requestId, invokeId);
    assert.ok(entries.some((e) => e.verb === 'revoke' && e.resource === 'tokens'));

    const everything = JSON.stringify(await auditOf(base, '?limit=10000'));
    const file = readFileSync(join(node.dataDir, 'audit', 'audit.jsonl'), 'utf8');
    for (const text of [everything, file]) {
      assert.ok(!text.includes(CANARY), 'a secret value is in the audit log');
      assert.ok(!text.includes(ADMIN), 'the admin token is in the audit log');
      assert.ok(
        !text.includes(token.status.token?.split('.')[2] ?? '-'),
        'a token secret is in the audit log',
      );
    }
  });

  it('filters the audit log by namespace, time and count', async () => {
    const inB = await auditOf(base, `?namespace=${B}`);
    assert.ok(inB.length > 0);
    assert.ok(inB.every((e) => e.namespace === B));
    assert.equal((await auditOf(base, '?limit=3')).length, 3);
    assert.deepEqual(
      await auditOf(base, `?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`),
      [],
    );
    assert.ok((await auditOf(base, '?since=1h')).length > 3);
    const bad = await fetch(`${base}${V1}/audit?since=yesterday`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(bad.status, 400);
  });

  it('keeps tokens and the audit log across a restart', async () => {
    const before = (await auditOf(base, '?limit=10000')).length;
    await node.stop();
    node = await startNode({ dataDir: node.dataDir, token: ADMIN, namespace: A });
    base = node.platform.apiUrl;
    const res = await fetch(`${base}${V1}/namespaces/${A}/functions`, {
      headers: { authorization: `Bearer ${bearer.viewA}` },
    });
    assert.equal(res.status, 200);
    assert.equal((await auditOf(base, '?limit=10000')).length, before);
  });
});

describe('the bootstrap admin token file', () => {
  it('is made once, adopted from an earlier version, and refused when it is not the installation’s', async () => {
    const dataDir = tempDir('admin');
    const file = join(dataDir, 'admin-token');
    const first = await startNode({ dataDir, adminTokenFile: file });
    try {
      assert.ok(first.platform.admin.created);
      assert.equal(readFileSync(file, 'utf8').trim(), first.platform.admin.created);
      const ok = await fetch(`${first.platform.apiUrl}/version`, {
        headers: { authorization: `Bearer ${first.platform.admin.created}` },
      });
      assert.equal(ok.status, 200);
    } finally {
      await first.stop();
    }
    const again = await startNode({ dataDir, adminTokenFile: file });
    try {
      assert.equal(again.platform.admin.created, undefined, 'shown once only');
      assert.equal(again.platform.admin.notice, undefined);
    } finally {
      await again.destroy();
    }
  });
});

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));

function kylix(server: string, token: string | undefined, ...args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, '--server', server, ...(token ? ['--token', token] : []), ...args],
      { env: { ...process.env, KYLIX_CONFIG: '/nonexistent', KYLIX_TOKEN: '', KYLIX_NAMESPACE: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kylix token and kylix audit', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ token: ADMIN });
  });
  after(async () => {
    await node.destroy();
  });

  it('creates a token shown once, lists it without secrets, and revokes it', async () => {
    const api = node.platform.apiUrl;
    const created = await kylix(
      api,
      ADMIN,
      'token',
      'create',
      '--role',
      'edit',
      '-n',
      'team-a,team-c',
      '--ttl',
      '24h',
      '--name',
      'ci',
    );
    assert.equal(created.code, 0, created.stderr);
    const token = /export KYLIX_TOKEN=(\S+)/.exec(created.stdout)?.[1] ?? '';
    const id = /token\/(t-[0-9a-f]+) created: role edit in team-a, team-c, expires /.exec(
      created.stdout,
    )?.[1];
    assert.ok(id, created.stdout);
    assert.match(token, /^kx1\.t-[0-9a-f]{12}\./);

    // The new token works, in its namespaces only.
    const own = await kylix(api, token, '-n', 'team-a', 'get', 'functions');
    assert.equal(own.code, 0, own.stderr);
    const other = await kylix(api, token, '-n', 'team-b', 'get', 'functions');
    assert.equal(other.code, 1);
    assert.match(other.stderr, /ERR_FORBIDDEN: Token "ci" .*role edit in team-a, team-c.*namespace "team-b"/);

    const list = await kylix(api, ADMIN, 'token', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+NAME\s+ROLE\s+NAMESPACES\s+STATUS\s+AGE\s+EXPIRES$/m);
    assert.match(list.stdout, new RegExp(`^${id}\\s+ci\\s+edit\\s+team-a,team-c\\s+Active\\s`, 'm'));
    assert.match(list.stdout, /^admin\s+admin \(bootstrap\)\s+admin\s+\*\s+Active/m);
    assert.ok(!list.stdout.includes(token.split('.')[2] ?? '-'));
    const json = JSON.parse((await kylix(api, ADMIN, 'token', 'list', '-o', 'json')).stdout) as {
      items: TokenObject[];
    };
    assert.ok(json.items.every((t) => t.status.token === undefined));

    // Only an admin manages tokens.
    const byEditor = await kylix(api, token, 'token', 'list');
    assert.equal(byEditor.code, 1);
    assert.match(byEditor.stderr, /ERR_FORBIDDEN/);

    const revoked = await kylix(api, ADMIN, 'token', 'revoke', id);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`token/${id} revoked`));
    const after = await kylix(api, token, '-n', 'team-a', 'get', 'functions');
    assert.match(after.stderr, /ERR_UNAUTHORIZED: The token "ci" was revoked/);
    assert.match(
      (await kylix(api, ADMIN, 'token', 'list')).stdout,
      new RegExp(`^${id}\\s+ci\\s+.*Revoked`, 'm'),
    );
  });

  it('refuses a bad role and a bad TTL before asking the server', async () => {
    const api = node.platform.apiUrl;
    const role = await kylix(api, ADMIN, 'token', 'create', '--role', 'owner');
    assert.match(role.stderr, /--role must be one of admin, edit, view/);
    const ttl = await kylix(api, ADMIN, 'token', 'create', '--role', 'view', '-n', 'x', '--ttl', 'soon');
    assert.match(ttl.stderr, /--ttl takes a duration/);
  });

  it('prints the audit log as a table, filtered, and as JSON', async () => {
    const api = node.platform.apiUrl;
    await kylix(api, ADMIN, '-n', 'team-z', 'secret', 'set', 'db', '--from-literal', `password=${CANARY}`);
    const table = await kylix(api, ADMIN, 'audit', '--since', '1h');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TIME\s+USER\s+VERB\s+RESOURCE\s+CODE\s+REQUEST$/m);
    assert.match(table.stdout, /admin \(bootstrap\) \(admin\)\s+create\s+tokens t-[0-9a-f]+\s+201/);
    assert.match(table.stdout, /\s+(apply|update|create|patch)\s+secrets team-z\/db\s+20\d/);
    const json = JSON.parse(
      (await kylix(api, ADMIN, '-n', 'team-z', 'audit', '-o', 'json')).stdout,
    ) as AuditEntryList;
    assert.ok(json.items.length > 0);
    assert.ok(json.items.every((e) => e.namespace === 'team-z'));
    assert.ok(!table.stdout.includes(CANARY) && !JSON.stringify(json).includes(CANARY));
  });
});

const pgDown = await reachable(TEST_POSTGRES_URL);
if (pgDown) console.log(`# skipping the fleet access suite: ${pgDown}`);

describe('a fleet: one token set and one audit log', { skip: pgDown }, () => {
  it('accepts on every node a token made on one, revokes everywhere, and shows every node’s entries', async () => {
    const installation = loadInstallation(undefined, {
      KYLIX_STATE_URL: TEST_POSTGRES_URL,
      KYLIX_STATE_SCHEMA: scratchSchema('kylix_access'),
      KYLIX_SECRET_KEYS: randomBytes(32).toString('base64'),
    });
    // Node 1 makes the admin token file; node 2 finds the installation has one and makes none.
    const dir1 = tempDir('fleet-a');
    const dir2 = tempDir('fleet-b');
    const a = await startNode({ installation, dataDir: dir1, adminTokenFile: join(dir1, 'admin-token') });
    const b = await startNode({ installation, dataDir: dir2, adminTokenFile: join(dir2, 'admin-token') });
    try {
      const admin = a.platform.admin.created ?? '';
      assert.ok(admin);
      assert.equal(b.platform.admin.created, undefined);
      assert.match(b.platform.admin.notice ?? '', /made by another node/);
      assert.equal(existsSync(join(dir2, 'admin-token')), false);

      const t = await createToken(a.platform.apiUrl, admin, {
        role: 'edit',
        namespaces: [A],
        description: 'fleet',
      });
      const secretOn = (node: TestNode) =>
        new ApiClient({ server: node.platform.apiUrl, token: t.status.token, namespace: A });
      for (const n of [a, b])
        await secretOn(n).json(
          'POST',
          `${V1}/namespaces/${A}/secrets`,
          JSON.parse(obj('Secret', `from-${n === a ? 'a' : 'b'}`, { stringData: { k: CANARY } })),
        );
      const forbidden = await fetch(`${b.platform.apiUrl}${V1}/namespaces/${B}/secrets`, {
        headers: { authorization: `Bearer ${t.status.token}` },
      });
      assert.equal(forbidden.status, 403);
      // The admin token of node 1 works on node 2.
      const log = await fetch(`${b.platform.apiUrl}${V1}/audit?namespace=${A}`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      const items = ((await log.json()) as AuditEntryList).items;
      assert.deepEqual(
        items.filter((e) => e.kind === 'Secret').map((e) => `${e.user.name} ${e.verb} ${e.name} ${e.code}`),
        ['fleet create from-a 201', 'fleet create from-b 201'],
      );
      assert.ok(!JSON.stringify(items).includes(CANARY));

      // Revoked on node 2, refused by node 1 at once.
      const revoke = await fetch(`${b.platform.apiUrl}${V1}/tokens/${t.metadata.name}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${admin}` },
      });
      assert.equal(revoke.status, 200);
      const refused = await fetch(`${a.platform.apiUrl}/version`, {
        headers: { authorization: `Bearer ${t.status.token}` },
      });
      assert.equal(refused.status, 401);
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });
});
