/**
 * The Helm chart (deploy/helm/kylix): its crds/ are what `kylix crds` prints today; its templates,
 * rendered (by test/helpers/helm-render.ts: there is no helm binary here) with the default values
 * and with each option switched, make the objects they should; and a real kube-apiserver accepts
 * every rendered object in a server-side dry run, after the CRDs are installed for real.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { crdFileName, crdYaml } from '../../src/cli/commands/crds.js';
import { customResourceDefinitions } from '../../src/kubernetes/crds.js';
import { renderChart } from '../helpers/helm-render.js';
import {
  forgetDiscovery,
  type KubeApiServer,
  kubeApiServerSkipReason,
  kubectl,
  startKubeApiServer,
} from '../helpers/kube-apiserver.js';

const CHART = fileURLToPath(new URL('../../deploy/helm/kylix', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));

type Obj = {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
};

const objectsOf = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => {
      assert.deepEqual(d.errors, [], 'rendered YAML parses');
      return d.toJS() as Obj;
    })
    .filter(Boolean);

/** The container spec of the rendered Deployment. */
function containerOf(objects: Obj[]): Record<string, unknown> & { args: string[] } {
  const deployment = objects.find((o) => o.kind === 'Deployment');
  assert.ok(deployment, 'a Deployment is rendered');
  const pod = (deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template
    .spec;
  return pod.containers[0] as Record<string, unknown> & { args: string[] };
}

/** The variants of values the suite renders and dry-runs. */
const VARIANTS: { name: string; values: Record<string, unknown> }[] = [
  { name: 'defaults', values: {} },
  {
    name: 'TLS, existing backends Secret, no bubblewrap, no PDB, 3 replicas',
    values: {
      replicaCount: 3,
      tls: { existingSecret: 'kylix-tls' },
      backends: { existingSecret: 'kylix-backends' },
      sandbox: { bubblewrap: false },
      podDisruptionBudget: { enabled: false },
    },
  },
  {
    name: 'backends from values, an existing ServiceAccount',
    values: {
      backends: {
        env: {
          KYLIX_POSTGRES_URL: 'postgres://kylix@postgres:5432/kylix',
          KYLIX_REDIS_URL: 'redis://redis:6379',
        },
      },
      serviceAccount: { create: false, name: 'custom' },
    },
  },
];

describe('the Helm chart', () => {
  it('crds/ holds exactly what `kylix crds` prints (regenerate: kylix crds --dir deploy/helm/kylix/crds)', () => {
    const crds = customResourceDefinitions();
    const files = readdirSync(`${CHART}/crds`).sort();
    assert.deepEqual(files, crds.map(crdFileName).sort());
    for (const crd of crds)
      assert.equal(
        readFileSync(`${CHART}/crds/${crdFileName(crd)}`, 'utf8'),
        crdYaml(crd),
        `${crdFileName(crd)} is out of date: run \`kylix crds --dir deploy/helm/kylix/crds\``,
      );
  });

  it('`kylix crds` prints them all as YAML documents, and as a List with -o json', async () => {
    const run = (args: string[]) =>
      new Promise<string>((done, fail) =>
        execFile(process.execPath, [BIN, 'crds', ...args], (err, stdout) => (err ? fail(err) : done(stdout))),
      );
    const crds = customResourceDefinitions();
    assert.equal(
      await run([]),
      `${crds
        .map((c) => `---\n${crdYaml(c)}`)
        .join('')
        .trimEnd()}\n`,
    );
    const list = JSON.parse(await run(['-o', 'json'])) as {
      kind: string;
      items: { metadata: { name: string } }[];
    };
    assert.equal(list.kind, 'List');
    assert.deepEqual(
      list.items.map((c) => c.metadata.name),
      crds.map((c) => c.metadata.name),
    );
  });

  it('renders the objects each option asks for', () => {
    const render = (values: Record<string, unknown>, apiVersions = ['policy/v1']) =>
      objectsOf(renderChart(CHART, { release: 'kx', namespace: 'kylix', values, apiVersions }));
    const base = render({});
    assert.deepEqual(base.map((o) => o.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
    ]);
    const c = containerOf(base);
    assert.ok(c.args.includes('--no-tls'));
    assert.ok(!c.args.includes('--insecure-sandbox'));
    assert.equal((c.readinessProbe as { httpGet: { path: string } }).httpGet.path, '/readyz');
    assert.equal((c.livenessProbe as { httpGet: { path: string } }).httpGet.path, '/healthz');
    assert.equal(base.find((o) => o.kind === 'PodDisruptionBudget')?.apiVersion, 'policy/v1');
    assert.equal(
      render({}, ['policy/v1beta1']).find((o) => o.kind === 'PodDisruptionBudget')?.apiVersion,
      'policy/v1beta1',
    );
    // The Service and the PodDisruptionBudget select the Deployment's pods.
    const podLabels = (
      base.find((x) => x.kind === 'Deployment') as unknown as {
        spec: { template: { metadata: { labels: object } } };
      }
    ).spec.template.metadata.labels;
    assert.deepEqual(podLabels, { 'app.kubernetes.io/name': 'kylix', 'app.kubernetes.io/instance': 'kx' });
    assert.deepEqual(
      ((base.find((x) => x.kind === 'Service') as Obj).spec as { selector: object }).selector,
      podLabels,
    );
    assert.deepEqual(
      (
        (base.find((x) => x.kind === 'PodDisruptionBudget') as Obj).spec as {
          selector: { matchLabels: object };
        }
      ).selector.matchLabels,
      podLabels,
    );
    const config = base.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> } | undefined;
    assert.match(config?.data['config.yaml'] ?? '', /provider: kubernetes/);

    // The installation's namespace: the release's by default (env and Lease Role), else the one named.
    const kubeNs = (objs: Obj[]) =>
      (containerOf(objs).env as { name: string; value?: string }[]).find(
        (e) => e.name === 'KYLIX_KUBE_NAMESPACE',
      )?.value;
    const roleNs = (objs: Obj[]) =>
      objs.filter((x) => x.kind === 'Role' || x.kind === 'RoleBinding').map((x) => x.metadata.namespace);
    assert.equal(kubeNs(base), 'kylix');
    assert.deepEqual(roleNs(base), ['kylix', 'kylix']);
    // Each node names its log lines after its pod.
    assert.deepEqual(
      (containerOf(base).env as { name: string; valueFrom?: unknown }[]).find(
        (e) => e.name === 'KYLIX_NODE_NAME',
      )?.valueFrom,
      { fieldRef: { fieldPath: 'metadata.name' } },
    );
    const named = render({
      config: { backends: { state: { provider: 'kubernetes', namespace: 'kx-state' } } },
    });
    assert.equal(kubeNs(named), undefined);
    assert.deepEqual(roleNs(named), ['kx-state', 'kx-state']);
    assert.match(
      (named.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> }).data[
        'config.yaml'
      ] ?? '',
      /namespace: kx-state/,
    );

    const other = render(VARIANTS[1]!.values);
    const o = containerOf(other);
    assert.ok(o.args.includes('--tls-cert=/etc/kylix/tls/tls.crt'));
    assert.ok(o.args.includes('--insecure-sandbox'));
    assert.equal((o.livenessProbe as { httpGet: { scheme?: string } }).httpGet.scheme, 'HTTPS');
    assert.deepEqual(o.envFrom, [{ secretRef: { name: 'kylix-backends' } }]);
    assert.ok(!other.some((x) => x.kind === 'PodDisruptionBudget' || x.kind === 'Secret'));
    const deployment = other.find((x) => x.kind === 'Deployment') as Obj;
    assert.equal((deployment.spec as { replicas: number }).replicas, 3);

    const third = render(VARIANTS[2]!.values);
    assert.ok(!third.some((x) => x.kind === 'ServiceAccount' || x.kind.includes('Role')));
    const secret = third.find((x) => x.kind === 'Secret') as
      | { stringData: Record<string, string> }
      | undefined;
    assert.equal(secret?.stringData.KYLIX_REDIS_URL, 'redis://redis:6379');
  });
});

const skip = kubeApiServerSkipReason() ?? false;
if (skip) console.log(`# helm dry-run skipped: ${skip}`);

describe('the chart on a real kube-apiserver (server-side dry run)', { skip }, () => {
  let api: KubeApiServer;
  before(async () => {
    api = await startKubeApiServer();
  });
  after(() => api?.stop());

  it('installs the CRDs, then accepts every rendered object of every variant', async () => {
    const crds = await kubectl(api.kubeconfig, ['apply', '-f', `${CHART}/crds`]);
    assert.equal(crds.code, 0, crds.stderr);
    const established = await kubectl(api.kubeconfig, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...customResourceDefinitions().map((c) => `crd/${c.metadata.name}`),
    ]);
    assert.equal(established.code, 0, established.stderr);
    forgetDiscovery(api.kubeconfig);
    const ns = await kubectl(api.kubeconfig, ['create', 'namespace', 'kylix']);
    assert.equal(ns.code, 0, ns.stderr);
    const versions = await kubectl(api.kubeconfig, ['api-versions']);
    const apiVersions = versions.stdout.trim().split('\n');
    for (const variant of VARIANTS) {
      const rendered = renderChart(CHART, {
        release: 'kx',
        namespace: 'kylix',
        values: variant.values,
        apiVersions,
      });
      const count = objectsOf(rendered).length;
      const run = await kubectl(api.kubeconfig, ['apply', '--dry-run=server', '-f', '-'], {
        input: rendered,
      });
      assert.equal(run.code, 0, `${variant.name}: ${run.stderr}`);
      assert.equal(run.stdout.match(/\(server dry run\)/g)?.length, count, `${variant.name}: ${run.stdout}`);
    }
  });
});
