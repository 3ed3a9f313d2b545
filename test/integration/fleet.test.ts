/**
 * A fleet: two nodes sharing one PostgreSQL state store. What is applied to either node runs on
 * both, revisions are made once, the nodes do not fight over status, a node that joins later
 * serves everything at once, and secrets stay sealed in the shared tables.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Installation, loadInstallation } from '../../src/config/installation.js';
import { eventually } from '../helpers/eventually.js';
import { apply, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { scratchSchema, TEST_POSTGRES_URL } from '../helpers/postgres.js';
import { reachable } from '../helpers/reachable.js';

const pgDown = await reachable(TEST_POSTGRES_URL);
if (pgDown) console.log(`# skipping the fleet suite: ${pgDown}`);

const CANARY = 'canary-fleet-5e1d-do-not-leak';
const manifest = `apiVersion: kylix.dev/v1
kind: Secret
metadata: { name: token }
spec:
  stringData: { key: ${CANARY} }
---
apiVersion: kylix.dev/v1
kind: Function
metadata: { name: greet }
spec:
  source: ./greet.ts
  routes: [{ path: /greet }]
  bindings:
    TOKEN: { secret: token }
`;
const code = (version: string) =>
  `export default { fetch(req, env) { return new Response('${version} secret=' + (env.TOKEN === '${CANARY}')); } };\n`;

async function body(node: TestNode, path: string): Promise<string> {
  const res = await fetch(node.url(path));
  return `${res.status} ${await res.text()}`;
}

describe('two nodes sharing the PostgreSQL state store', { skip: pgDown }, () => {
  const nodes: TestNode[] = [];
  let installation: Installation;
  let dir: string;
  before(async () => {
    installation = loadInstallation(undefined, {
      KYLIX_STATE_URL: TEST_POSTGRES_URL,
      KYLIX_STATE_SCHEMA: scratchSchema('kylix_fleet'),
      // Every node of a fleet holds the same secret keys.
      KYLIX_SECRET_KEYS: randomBytes(32).toString('base64'),
    });
    nodes.push(await startNode({ installation }), await startNode({ installation }));
    dir = writeProject({ 'kylix.yaml': manifest, 'greet.ts': code('v1') });
  });
  after(async () => {
    for (const n of nodes) await n.destroy();
  });

  it('serves on every node what was applied to one, with one set of revisions', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    const { ok } = await apply(a, dir);
    assert.ok(ok);
    // Ready means a node serves it (status is shared); every node follows within moments.
    for (const n of [a, b]) await eventually(async () => (await body(n, '/greet')) === '200 v1 secret=true');

    // A change applied to the other node reaches both, as one new revision.
    writeFileSync(join(dir, 'greet.ts'), code('v2'));
    assert.ok((await apply(b, dir)).ok);
    for (const n of [a, b]) await eventually(async () => (await body(n, '/greet')) === '200 v2 secret=true');
    const revisions = await a.client.list('revisions');
    assert.deepEqual(
      revisions.map((r) => r.metadata.name),
      ['greet-1', 'greet-2'],
    );
  });

  it('settles: once ready, the nodes stop rewriting the function', async () => {
    const [a] = nodes as [TestNode];
    const before = (await a.client.get('functions', 'greet')).metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 1500));
    const fn = await a.client.get('functions', 'greet');
    assert.equal(fn.metadata.resourceVersion, before);
    assert.ok(fn.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  });

  it('starts a node that joins later with every function already served', async () => {
    const c = await startNode({ installation });
    nodes.push(c);
    assert.equal(await body(c, '/greet'), '200 v2 secret=true');
  });

  it('keeps secret values sealed in the shared tables', async () => {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const { schema } = installation.backends.state as { schema: string };
      const tables = await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
        [schema],
      );
      assert.ok(tables.rows.length >= 4);
      for (const { table_name } of tables.rows) {
        const dump = await client.query<{ row: string }>(
          `SELECT t::text AS row FROM "${schema}"."${table_name}" t`,
        );
        for (const { row } of dump.rows)
          assert.ok(!row.includes(CANARY), `${table_name} holds the plaintext`);
      }
    } finally {
      await client.end();
    }
  });
});
