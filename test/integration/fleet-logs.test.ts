/**
 * Logs on a fleet: two nodes sharing one PostgreSQL state store. `kylix logs` on either node shows
 * the lines of both, merged by time and naming their node, with --tail, --level, --revision and
 * --since applied across the fleet, and -f streams lines written on the other node. Then the
 * same on a cluster (the Helm chart's setup): two nodes with the kubernetes state backend on a real
 * kube-apiserver and a PostgreSQL Database backend, a Function applied with kubectl.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logsCommand } from '../../src/cli/commands/logs.js';
import { type Installation, installationSchema, loadInstallation } from '../../src/config/installation.js';
import type { LogEntry } from '../../src/resources/api-types.js';
import { eventually } from '../helpers/eventually.js';
import {
  installKylixCrds,
  type KubeApiServer,
  kubeApiServerSkipReason,
  kubectl,
  startKubeApiServer,
} from '../helpers/kube-apiserver.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { scratchSchema, TEST_POSTGRES_URL } from '../helpers/postgres.js';
import { reachable } from '../helpers/reachable.js';

const pgDown = await reachable(TEST_POSTGRES_URL);
if (pgDown) console.log(`# skipping the fleet logs suite: ${pgDown}`);

/** A function that logs, at three levels, the marker the request names. */
const source = (version: string) => `export default { fetch(req) {
  const tag = new URL(req.url).searchParams.get('tag');
  console.log('${version} plain ' + tag);
  console.warn('${version} careful ' + tag);
  console.error('${version} broken ' + tag);
  return new Response('ok');
} };\n`;

describe('kylix logs on a fleet', { skip: pgDown }, () => {
  const nodes: TestNode[] = [];
  let installation: Installation;
  let dir: string;
  /** `kylix logs talker -o json …` against `node`, parsed. */
  const logs = async (node: TestNode, flags: Parameters<typeof logsCommand>[2] = {}) => {
    const lines: string[] = [];
    await logsCommand(node.client, 'talker', { ...flags, output: 'json' }, (l) => lines.push(l));
    return lines.map((l) => JSON.parse(l) as LogEntry);
  };
  const call = async (node: TestNode, tag: string) => {
    const res = await fetch(node.url(`/talker?tag=${tag}`));
    assert.equal(res.status, 200);
    await res.text();
  };

  before(async () => {
    installation = loadInstallation(undefined, {
      KYLIX_STATE_URL: TEST_POSTGRES_URL,
      KYLIX_STATE_SCHEMA: scratchSchema('kylix_fleet_logs'),
      KYLIX_SECRET_KEYS: randomBytes(32).toString('base64'),
    });
    nodes.push(await startNode({ installation }), await startNode({ installation }));
    dir = writeProject({
      'kylix.yaml': functionManifest('talker', './t.ts', ['/talker']),
      't.ts': source('v1'),
    });
    assert.ok((await apply(nodes[0] as TestNode, dir)).ok);
    for (const n of nodes)
      await eventually(async () => (await fetch(n.url('/talker?tag=probe'))).status === 200);
  });
  after(async () => {
    for (const n of nodes) await n.destroy();
  });

  it("shows every node's lines on either node, merged by time and naming their node", async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    await call(a, 'first-on-a');
    await call(b, 'then-on-b');
    await call(a, 'last-on-a');
    const mine = (entries: LogEntry[]) =>
      entries.filter((e) => / plain (first-on-a|then-on-b|last-on-a)$/.test(e.message));
    for (const reader of [a, b]) {
      // A node writes its lines to the shared table in batches: the other's appear within moments.
      let entries: LogEntry[] = [];
      await eventually(async () => {
        entries = await logs(reader, { tail: '500' });
        return mine(entries).length === 3;
      });
      const plain = mine(entries);
      assert.deepEqual(
        plain.map((e) => e.message),
        ['v1 plain first-on-a', 'v1 plain then-on-b', 'v1 plain last-on-a'],
      );
      const times = entries.map((e) => Date.parse(e.time));
      assert.deepEqual(
        times,
        [...times].sort((x, y) => x - y),
        'merged by time',
      );
      const names = new Set(plain.map((e) => e.node));
      assert.equal(names.size, 2, 'two nodes wrote them');
      assert.equal(plain[0]?.node, plain[2]?.node);
      // Each invocation's record is there too, from the node that served it.
      assert.ok(entries.some((e) => e.invocation && e.node === plain[1]?.node));
    }
  });

  it('applies --tail, --level, --revision and --since across the fleet', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    const since = new Date().toISOString();
    await call(a, 'filter-a');
    await call(b, 'filter-b');
    let errors: LogEntry[] = [];
    await eventually(async () => {
      errors = await logs(a, { level: 'error', since });
      return errors.length >= 2;
    });
    assert.deepEqual(
      errors.map((e) => e.message),
      ['v1 broken filter-a', 'v1 broken filter-b'],
    );
    const lastTwo = await logs(b, { tail: '2', level: 'warn' });
    assert.deepEqual(
      lastTwo.map((e) => e.message),
      ['v1 careful filter-b', 'v1 broken filter-b'],
    );

    writeFileSync(join(dir, 't.ts'), source('v2'));
    assert.ok((await apply(a, dir)).ok);
    await eventually(async () => {
      await call(b, 'rev2');
      return (await logs(a, { revision: '2', level: 'warn' })).some((e) => e.message === 'v2 careful rev2');
    });
    const rev2 = await logs(a, { revision: '2' });
    assert.ok(rev2.length > 0 && rev2.every((e) => e.revision === 2));
    assert.ok((await logs(a, { revision: '1' })).every((e) => e.revision === 1));
  });

  it('follows (-f) lines written on the other node', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    const seen: LogEntry[] = [];
    const abort = new AbortController();
    const following = logsCommand(
      a.client,
      'talker',
      { follow: true, tail: '0', level: 'error', output: 'json' },
      (l) => seen.push(JSON.parse(l) as LogEntry),
      abort.signal,
    );
    try {
      await eventually(
        async () => {
          await call(b, 'followed');
          return seen.some((e) => / broken followed$/.test(e.message));
        },
        15_000,
        300,
      );
      assert.ok(
        seen.every((e) => e.level === 'error'),
        'the level filter holds while following',
      );
      const fromB = seen.find((e) => / broken followed$/.test(e.message));
      assert.notEqual(fromB?.node, undefined);
    } finally {
      abort.abort();
      await following.catch(() => undefined);
    }
  });
});

const kubeSkip = pgDown ?? kubeApiServerSkipReason();
if (kubeSkip && !pgDown) console.log(`# skipping the fleet logs suite on Kubernetes: ${kubeSkip}`);

describe('kylix logs on a fleet with the kubernetes state backend', {
  skip: kubeSkip,
  timeout: 300_000,
}, () => {
  let api: KubeApiServer;
  const nodes: TestNode[] = [];
  // The installation's namespace names the logs' schema (kylix_<namespace>): one per run.
  const namespace = `kylix-logs-${randomBytes(4).toString('hex')}`;

  before(async () => {
    api = await startKubeApiServer();
    await installKylixCrds(api.kubeconfig);
    const installation = installationSchema.parse({
      backends: {
        state: { provider: 'kubernetes', kubeconfig: api.kubeconfig, namespace },
        database: { provider: 'postgres', url: TEST_POSTGRES_URL },
      },
    });
    nodes.push(await startNode({ installation }), await startNode({ installation }));
    const manifest = `apiVersion: kylix.dev/v1
kind: Function
metadata: { name: talker }
spec:
  routes: [{ path: /talker }]
  code: |
${source('k8s')
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;
    const applied = await kubectl(api.kubeconfig, ['apply', '-f', '-'], { input: manifest });
    assert.equal(applied.code, 0, applied.stderr);
    for (const n of nodes)
      await eventually(async () => (await fetch(n.url('/talker?tag=probe'))).status === 200, 60_000);
  });
  after(async () => {
    for (const n of nodes) await n.destroy().catch(() => {});
    await api?.stop();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "kylix_${namespace.replaceAll('-', '_')}" CASCADE`);
    await client.end();
  });

  it("shows and follows every node's lines on either node", async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    await fetch(a.url('/talker?tag=on-a')).then((r) => r.text());
    await fetch(b.url('/talker?tag=on-b')).then((r) => r.text());
    for (const reader of [a, b]) {
      let mine: LogEntry[] = [];
      await eventually(async () => {
        const lines: string[] = [];
        await logsCommand(reader.client, 'talker', { tail: '500', output: 'json' }, (l) => lines.push(l));
        mine = lines.map((l) => JSON.parse(l) as LogEntry).filter((e) => / plain on-[ab]$/.test(e.message));
        return mine.length === 2;
      });
      assert.deepEqual(
        mine.map((e) => e.message),
        ['k8s plain on-a', 'k8s plain on-b'],
      );
      assert.equal(new Set(mine.map((e) => e.node)).size, 2, 'two nodes wrote them');
    }
    // -f on one node streams what the other writes.
    const seen: LogEntry[] = [];
    const abort = new AbortController();
    const following = logsCommand(
      a.client,
      'talker',
      { follow: true, tail: '0', output: 'json' },
      (l) => seen.push(JSON.parse(l) as LogEntry),
      abort.signal,
    );
    try {
      await eventually(
        async () => {
          await fetch(b.url('/talker?tag=followed')).then((r) => r.text());
          return seen.some((e) => e.message === 'k8s plain followed');
        },
        15_000,
        300,
      );
    } finally {
      abort.abort();
      await following.catch(() => undefined);
    }
  });
});
