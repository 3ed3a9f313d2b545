/**
 * The CRDs of `kylix crds` on a real kube-apiserver (v1.20, with the real kubectl): they install
 * (structural, accepted as written), and on a corpus of manifests the CRD schema and Kylix's own
 * validation agree: every valid one is accepted by both and stored with the same defaults; every
 * invalid one is refused by both. The few rules a v1.20 CRD cannot state (src/kubernetes/structural.ts
 * lists them) are checked too: the cluster accepts those manifests and Kylix refuses them, so the
 * list of differences cannot silently grow or shrink.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crdYaml } from '../../src/cli/commands/crds.js';
import { customResourceDefinitions } from '../../src/kubernetes/crds.js';
import { validateObject } from '../../src/resources/validate.js';
import {
  forgetDiscovery,
  type KubeApiServer,
  kubeApiServerSkipReason,
  kubectl,
  startKubeApiServer,
} from '../helpers/kube-apiserver.js';

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
};

const fn = (name: string, spec: Record<string, unknown>): Manifest => ({
  apiVersion: 'kylix.dev/v1',
  kind: 'Function',
  metadata: { name },
  spec: { source: './index.ts', ...spec },
});
const of = (kind: string, name: string, spec: Record<string, unknown>): Manifest => ({
  apiVersion: 'kylix.dev/v1',
  kind,
  metadata: { name },
  spec,
});

/** Manifests both must accept. */
const VALID: Manifest[] = [
  fn('minimal', {}),
  fn('routes', {
    routes: [
      { path: '/' },
      { path: '/users/:id', methods: ['GET', 'DELETE'] },
      { path: '/static/*', host: '*.example.com' },
      { path: '/a:b/c', host: 'shop.example.com:8443' },
    ],
  }),
  fn('full', {
    // No empty string here: see 'an empty string value' below for why.
    env: { GREETING: 'hello', _X1: '1' },
    bindings: {
      DB: { database: 'main' },
      CACHE: { keyValue: 'cache' },
      JOBS: { queue: 'jobs' },
      FILES: { bucket: 'files' },
      API_KEY: { secret: 'keys', key: 'api' },
      ALL: { secret: 'keys' },
    },
    limits: { cpuMs: 10, timeoutMs: 900000, memoryMiB: 4096, maxRequestBytes: 0, maxConcurrency: 1 },
    scaling: { minInstances: 1, maxInstances: 3, targetConcurrency: 5, idleSeconds: 1 },
    egress: { allow: ['api.example.com', '*.example.org'] },
    triggers: {
      queue: { name: 'jobs', batchSize: 1000, maxRetries: 0, deadLetter: 'dead' },
      schedule: { cron: '*/5 * * * *', timezone: 'Europe/Berlin' },
    },
    traffic: [
      { revision: 1, percent: 90, tag: 'stable' },
      { latestRevision: true, percent: 10, tag: 'canary-1' },
    ],
    revisionHistoryLimit: 0,
  }),
  fn('bundled', { bundle: `sha256:${'ab'.repeat(32)}` }),
  fn('bundled-hex', { bundle: 'ab'.repeat(32) }),
  {
    ...fn('inline', {}),
    spec: { code: 'export default { fetch: () => new Response("hi") };', routes: [{ path: '/' }] },
  },
  { ...fn('by-url', {}), spec: { bundle: { url: 'https://example.com/b.js', sha256: 'cd'.repeat(32) } } },
  { ...fn('in-store', {}), spec: { bundle: { sha256: `sha256:${'ef'.repeat(32)}` } } },
  of('Database', 'main', {
    migrations: './migrations',
    migrationFiles: [{ name: '001.sql', sql: 'select 1' }],
  }),
  of('Database', 'empty', {}),
  of('KeyValue', 'cache', { defaultTtlSeconds: 60 }),
  of('Queue', 'jobs', { retentionHours: 1 }),
  of('Queue', 'defaults', {}),
  of('Bucket', 'files', {}),
  of('Secret', 'keys', {
    stringData: { api: 'x', 'a.b-c_d': 'y' },
    data: { raw: Buffer.from('bytes').toString('base64') },
  }),
];

/** Manifests both must refuse, each with why. */
const INVALID: [string, Manifest][] = [
  ['none of source, code and bundle', { ...fn('nosource', {}), spec: { routes: [{ path: '/x' }] } }],
  ['source and code', fn('two1', { code: 'export default {}' })],
  ['code and a bundle digest', { ...fn('two2', {}), spec: { code: 'x', bundle: 'ab'.repeat(32) } }],
  [
    'code and a bundle url',
    { ...fn('two3', {}), spec: { code: 'x', bundle: { url: 'https://e.com/b', sha256: 'ab'.repeat(32) } } },
  ],
  ['source and a bundle url', fn('two4', { bundle: { url: 'https://e.com/b', sha256: 'ab'.repeat(32) } })],
  ['empty inline code', { ...fn('code0', {}), spec: { code: '' } }],
  ['a bundle reference without sha256', { ...fn('ref1', {}), spec: { bundle: { url: 'https://e.com/b' } } }],
  [
    'a bundle url that is not http(s)',
    { ...fn('ref2', {}), spec: { bundle: { url: 'ftp://e.com/b', sha256: 'ab'.repeat(32) } } },
  ],
  [
    'a bundle reference with a bad digest',
    { ...fn('ref3', {}), spec: { bundle: { url: 'https://e.com/b', sha256: 'md5:1' } } },
  ],
  [
    'a bundle reference with a third field',
    { ...fn('ref4', {}), spec: { bundle: { url: 'https://e.com/b', sha256: 'ab'.repeat(32), size: 1 } } },
  ],
  ['an unknown spec field', fn('unknown', { sorce: 'x' })],
  ['an unknown field in limits', fn('unknown2', { limits: { cpu: 1 } })],
  ['a route without "/"', fn('r1', { routes: [{ path: 'no-slash' }] })],
  ['"*" not as the last segment', fn('r2', { routes: [{ path: '/a/*/b' }] })],
  ['"*" inside a segment', fn('r3', { routes: [{ path: '/a*' }] })],
  ['a bad parameter segment', fn('r4', { routes: [{ path: '/users/:1d' }] })],
  ['an empty path', fn('r5', { routes: [{ path: '' }] })],
  ['an unknown method', fn('r6', { routes: [{ path: '/', methods: ['FETCH'] }] })],
  ['no methods', fn('r7', { routes: [{ path: '/', methods: [] }] })],
  ['an upper-case host', fn('r8', { routes: [{ path: '/', host: 'Shop.example.com' }] })],
  ['101 routes', fn('r9', { routes: Array.from({ length: 101 }, (_, i) => ({ path: `/r${i}` })) })],
  ['cpuMs under its minimum', fn('l1', { limits: { cpuMs: 5 } })],
  ['memoryMiB over its maximum', fn('l2', { limits: { memoryMiB: 5000 } })],
  ['a fractional timeout', fn('l3', { limits: { timeoutMs: 1000.5 } })],
  ['a string for a number', fn('l4', { limits: { cpuMs: '100' } })],
  ['maxInstances 0', fn('s1', { scaling: { maxInstances: 0 } })],
  ['a binding naming two resources', fn('b1', { bindings: { X: { database: 'a', queue: 'b' } } })],
  ['a binding naming none', fn('b2', { bindings: { X: {} } })],
  ['a key on a non-secret binding', fn('b3', { bindings: { X: { database: 'a', key: 'k' } } })],
  ['a binding to a bad name', fn('b4', { bindings: { X: { database: 'Main_DB' } } })],
  ['an unknown binding kind', fn('b5', { bindings: { X: { topic: 'a' } } })],
  ['a cron of three fields', fn('c1', { triggers: { schedule: { cron: '* * *' } } })],
  ['a queue trigger without a name', fn('c2', { triggers: { queue: { batchSize: 5 } } })],
  ['batchSize over 1000', fn('c3', { triggers: { queue: { name: 'q', batchSize: 1001 } } })],
  ['a traffic tag with "--"', fn('t1', { traffic: [{ latestRevision: true, percent: 100, tag: 'a--b' }] })],
  ['a percent over 100', fn('t2', { traffic: [{ latestRevision: true, percent: 101 }] })],
  ['a bundle that is not a digest', fn('d1', { bundle: 'md5:abc' })],
  ['an env value over 32 KiB', fn('e1', { env: { BIG: 'x'.repeat(32 * 1024 + 1) } })],
  ['an egress host over 253 characters', fn('e2', { egress: { allow: ['a'.repeat(254)] } })],
  ['a name over 63 characters', fn('n'.repeat(64), {})],
  ['a KeyValue TTL under 60 s', of('KeyValue', 'kv1', { defaultTtlSeconds: 30 })],
  ['a Queue kept 0 hours', of('Queue', 'q1', { retentionHours: 0 })],
  ['a field on a Bucket', of('Bucket', 'bk1', { region: 'eu' })],
  ['Secret data that is not base64', of('Secret', 'sec1', { data: { k: '!!not base64!!' } })],
  [
    'a migration file that is not .sql',
    of('Database', 'db1', { migrationFiles: [{ name: 'x.txt', sql: '' }] }),
  ],
];

/** Refused by Kylix, accepted by a v1.20 CRD: the rules structural.ts says a CRD cannot state. */
const KYLIX_ONLY: [string, Manifest][] = [
  ['an env name that is not a variable name (map keys)', fn('k1', { env: { '1BAD': 'x' } })],
  [
    'an unknown time zone',
    fn('k2', { triggers: { schedule: { cron: '* * * * *', timezone: 'Mars/Olympus' } } }),
  ],
  ['percents that do not add up to 100', fn('k3', { traffic: [{ latestRevision: true, percent: 90 }] })],
  [
    'a traffic entry naming both a revision and latest',
    fn('k4', { traffic: [{ revision: 1, latestRevision: true, percent: 100 }] }),
  ],
  // An untyped (string-or-object) field: its object form's unknown field and a value of a third type.
  [
    'a bundle reference with an unknown field',
    { ...fn('k5', {}), spec: { bundle: { sha256: 'ab'.repeat(32), size: 1 } } },
  ],
  ['a bundle that is a number', { ...fn('k6', {}), spec: { bundle: 12 } }],
];

const kylixAccepts = (m: Manifest): boolean => {
  try {
    validateObject(structuredClone(m));
    return true;
  } catch {
    return false;
  }
};

const skip = kubeApiServerSkipReason() ?? false;
if (skip) console.log(`# kubernetes-crds skipped: ${skip}`);

describe('the CRDs on a real kube-apiserver agree with Kylix validation', { skip }, () => {
  let api: KubeApiServer;
  const crds = customResourceDefinitions();
  let installed: { code: number; stderr: string };
  before(async () => {
    api = await startKubeApiServer();
    installed = await kubectl(api.kubeconfig, ['apply', '-f', '-'], {
      input: crds.map((c) => `---\n${crdYaml(c)}`).join(''),
    });
    await kubectl(api.kubeconfig, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...crds.map((c) => `crd/${c.metadata.name}`),
    ]);
    forgetDiscovery(api.kubeconfig);
  });
  after(() => api?.stop());

  it('install (structural, no errors) and become Established, with categories, short names and status', async () => {
    assert.equal(installed.code, 0, installed.stderr);
    const wait = await kubectl(api.kubeconfig, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...crds.map((c) => `crd/${c.metadata.name}`),
    ]);
    assert.equal(wait.code, 0, wait.stderr);
    const resources = await kubectl(api.kubeconfig, ['api-resources', '--api-group=kylix.dev', '-o', 'wide']);
    assert.equal(resources.code, 0, resources.stderr);
    assert.match(resources.stdout, /^functions\s+fn,func\s+kylix\.dev\/v1\s+true\s+Function\s+.*kylix/m);
    assert.match(resources.stdout, /^revisions\s+rev\s+kylix\.dev\/v1\s+true\s+Revision/m);
    // NonStructuralSchema would show as a condition; none may be there.
    const conditions = await kubectl(api.kubeconfig, ['get', 'crd', '-o', 'jsonpath={..conditions[*].type}']);
    assert.doesNotMatch(conditions.stdout, /NonStructural/);
  });

  it('every valid manifest: Kylix accepts it, the cluster stores it with the same defaults', async () => {
    for (const m of VALID) {
      const ours = validateObject(structuredClone(m));
      const created = await kubectl(api.kubeconfig, ['create', '-f', '-', '-o', 'json'], {
        input: JSON.stringify(m),
      });
      assert.equal(created.code, 0, `${m.kind}/${m.metadata.name}: ${created.stderr}`);
      const stored = JSON.parse(created.stdout) as Manifest;
      assert.deepEqual(stored.spec, ours.spec, `${m.kind}/${m.metadata.name}: defaults differ`);
    }
  });

  it('every invalid manifest: both refuse it', async () => {
    for (const [why, m] of INVALID) {
      assert.equal(kylixAccepts(m), false, `Kylix accepts ${why}`);
      const run = await kubectl(api.kubeconfig, ['create', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify(m),
      });
      assert.notEqual(run.code, 0, `the CRD accepts ${why}: ${run.stdout}`);
    }
  });

  it('the documented differences are exactly those: the cluster accepts, Kylix refuses', async () => {
    for (const [why, m] of KYLIX_ONLY) {
      assert.equal(kylixAccepts(m), false, `Kylix accepts ${why}`);
      const run = await kubectl(api.kubeconfig, ['create', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify(m),
      });
      assert.equal(
        run.code,
        0,
        `the CRD now refuses ${why} (update structural.ts and this list): ${run.stderr}`,
      );
    }
  });

  // The kube-apiserver kube-apiserver.sh builds (v1.20.2 with Go 1.19) decodes "" in a *custom
  // resource* as null before validation (a built-in kind such as a ConfigMap keeps it), so it
  // refuses `env: { X: "" }` with 'must be of type string: "null"'; Kubernetes itself stores "".
  // The CRD is not the cause (type string allows ""), so the corpus leaves "" out, and this pins the
  // defect: when a fixed build stores "", move `_X1: ''` back into the corpus above.
  it('an empty string value: Kylix accepts it; this test build of the API server turns it into null', async () => {
    const m = fn('empty-value', { env: { _X1: '' } });
    assert.equal(kylixAccepts(m), true);
    const run = await kubectl(api.kubeconfig, ['create', '--dry-run=server', '-f', '-', '-o', 'json'], {
      input: JSON.stringify(m),
    });
    if (run.code === 0) {
      assert.equal((JSON.parse(run.stdout) as { spec: { env: Record<string, string> } }).spec.env._X1, '');
      console.log('# this API server keeps "" in custom resources: move _X1: "" back into the corpus');
    } else assert.match(run.stderr, /spec\.env\._X1: Invalid value: "null": .* must be of type string/);
  });

  it('kubectl get shows the printer columns of kylix get', async () => {
    const k = await kubectl(api.kubeconfig, ['get', 'functions', 'routes']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /^NAME\s+REVISION\s+ROUTES\s+READY\s+AGE$/m);
    const kylix = await kubectl(api.kubeconfig, ['get', 'kylix']);
    assert.match(kylix.stdout, /function\.kylix\.dev\/minimal/);
    assert.match(kylix.stdout, /queue\.kylix\.dev\/jobs/);
  });
});
