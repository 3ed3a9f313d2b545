/**
 * Kylix nodes on a real Kubernetes API server (kube-apiserver 1.20 on etcd, with the garbage
 * collector of kube-controller-manager; no kubelet or scheduler, so no pods: the nodes run here,
 * in this process, pointed at the cluster by a kubeconfig, as they would from outside it).
 * What is proven: the CRDs install; manifests applied with the real kubectl are served (code
 * inline, by URL, or from the ConfigMap `kylix apply` stores) with their bindings, a native
 * Secret among them; a change applied with kubectl makes a new revision; deleting a Function
 * garbage-collects its revisions through ownerReferences; the store maps the server's own
 * resourceVersions, preconditions, status subresource and 410 Gone.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { bundleFunction } from '../../src/build/bundle.js';
import { installationSchema } from '../../src/config/installation.js';
import { SecretBox } from '../../src/control-plane/secrets.js';
import type { WatchEvent } from '../../src/control-plane/store/interface.js';
import type { KylixError } from '../../src/errors.js';
import { bundleConfigMapName } from '../../src/kubernetes/bundles.js';
import { KubeClient } from '../../src/kubernetes/client.js';
import { openKubernetesStore } from '../../src/kubernetes/store.js';
import { customResource } from '../../src/kubernetes/store-kinds.js';
import { ResourceStream } from '../../src/kubernetes/store-stream.js';
import type { KObject } from '../../src/resources/meta.js';
import { eventually } from '../helpers/eventually.js';
import {
  installKylixCrds,
  type KubeApiServer,
  kubeApiServerSkipReason,
  kubectl,
  startKubeApiServer,
} from '../helpers/kube-apiserver.js';
import { startNode, type TestNode, writeProject } from '../helpers/platform.js';

const skip = kubeApiServerSkipReason();
if (skip) console.log(`# skipping the Kubernetes state store suite: ${skip}`);

const EXAMPLES = join(import.meta.dirname, '../../examples');

/** The documents of a manifest file. */
function docs(file: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}

/** A Function manifest with its source replaced by `code` (what a user writes for kubectl). */
function withSpec(doc: Record<string, unknown>, spec: Record<string, unknown>): Record<string, unknown> {
  const { source: _, ...rest } = doc.spec as Record<string, unknown>;
  return { ...doc, spec: { ...rest, ...spec } };
}

const yamlOf = (objects: Record<string, unknown>[]) => objects.map((o) => stringify(o)).join('---\n');

describe('Kylix nodes on a Kubernetes API server', { skip, timeout: 600_000 }, () => {
  let api: KubeApiServer;
  let kc: (args: string[], input?: string) => Promise<string>;
  const nodes: TestNode[] = [];

  async function node(): Promise<TestNode> {
    const n = await startNode({
      installation: installationSchema.parse({
        backends: { state: { provider: 'kubernetes', kubeconfig: api.kubeconfig } },
      }),
    });
    nodes.push(n);
    return n;
  }

  const ready = (ns: string, name: string, kind = 'function') =>
    kc(['-n', ns, 'get', kind, name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);

  before(async () => {
    api = await startKubeApiServer();
    kc = async (args, input) => {
      const r = await kubectl(api.kubeconfig, args, input === undefined ? {} : { input });
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    };
    await installKylixCrds(api.kubeconfig);
  });

  after(async () => {
    for (const n of nodes) await n.destroy().catch(() => {});
    await api?.stop();
  });

  it('keeps objects as custom resources with the server’s resourceVersions, preconditions and status subresource', async () => {
    const store = await openKubernetesStore({
      kubeconfig: api.kubeconfig,
      secrets: SecretBox.fromKeys([Buffer.alloc(32, 7)]),
    });
    try {
      const seen: WatchEvent[] = [];
      const w = store.watch(await store.currentVersion(), (e) => seen.push(e));
      const fn: KObject = {
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: {
          name: 'f',
          namespace: 'store',
          uid: '',
          resourceVersion: '',
          generation: 1,
          creationTimestamp: '',
        },
        spec: { code: 'export default { fetch: () => new Response("x") }', routes: [{ path: '/f' }] },
      };
      // The namespace did not exist: the store creates it.
      const a = await store.put(fn, { mustNotExist: true });
      assert.match(a.metadata.uid, /^[0-9a-f-]{36}$/);
      await assert.rejects(
        store.put(fn, { mustNotExist: true }),
        (e: KylixError) => e.code === 'ERR_ALREADY_EXISTS',
      );
      // Status alone goes through the status subresource: the generation stays.
      const b = await store.put(
        { ...a, status: { phase: 'x' } },
        { resourceVersion: a.metadata.resourceVersion },
      );
      assert.equal(b.metadata.generation, 1);
      assert.deepEqual(JSON.parse(await kc(['-n', 'store', 'get', 'function', 'f', '-o', 'json'])).status, {
        phase: 'x',
      });
      // A stale resourceVersion is the server's Conflict.
      await assert.rejects(
        store.put(
          { ...a, spec: { ...a.spec, env: { A: '1' } } },
          { resourceVersion: a.metadata.resourceVersion },
        ),
        (e: KylixError) => e.code === 'ERR_CONFLICT',
      );
      const c = await store.put(
        { ...b, spec: { ...b.spec, env: { A: '1' } } },
        { resourceVersion: b.metadata.resourceVersion },
      );
      assert.equal(c.metadata.generation, 2);
      assert.ok(Number(c.metadata.resourceVersion) > Number(b.metadata.resourceVersion));
      // Read back with the schema's defaults, as the API would have stored them.
      const back = (await store.get('Function', 'store', 'f')) as KObject<{ limits: { timeoutMs: number } }>;
      assert.equal(back.spec?.limits.timeoutMs, 30_000);
      // An internal kind is a labelled ConfigMap.
      const state = await store.put(
        { ...fn, kind: 'ScheduleState', spec: { lastTick: 5 } },
        { mustNotExist: true },
      );
      assert.equal(
        (await store.get('ScheduleState', 'store', 'f'))?.metadata.resourceVersion,
        state.metadata.resourceVersion,
      );
      assert.match(
        await kc([
          '-n',
          'store',
          'get',
          'configmaps',
          '-l',
          'kylix.dev/internal-kind=ScheduleState',
          '-o',
          'name',
        ]),
        /kylix-schedulestate\.f/,
      );
      // A change made with kubectl reaches watchers.
      await kc(['-n', 'store', 'label', 'function', 'f', 'team=a']);
      await eventually(() =>
        seen.some((e) => e.type === 'MODIFIED' && e.object.metadata.labels?.team === 'a'),
      );
      await store.delete('Function', 'store', 'f');
      await eventually(() => seen.some((e) => e.type === 'DELETED' && e.object.kind === 'Function'));
      await assert.rejects(
        store.delete('Function', 'store', 'f'),
        (e: KylixError) => e.code === 'ERR_NOT_FOUND',
      );
      w.close();
    } finally {
      await store.close();
    }
  });

  it('lists again when a watch is told 410 Gone, handing on what changed meanwhile', async () => {
    const client = await KubeClient.connect({ kubeconfig: api.kubeconfig });
    const events: WatchEvent[] = [];
    const stream = new ResourceStream(
      client,
      customResource('Bucket', 'buckets'),
      (e) => events.push(e),
      () => {},
    );
    const bucket = (name: string) => ({
      apiVersion: 'kylix.dev/v1',
      kind: 'Bucket',
      metadata: { name },
      spec: {},
    });
    await kc(['create', 'namespace', 'gone']);
    await kc(['-n', 'gone', 'apply', '-f', '-'], yamlOf([bucket('old')]));
    await stream.relist();
    assert.equal(stream.relists, 1);
    // Changed while no watch ran; then a watch from a version etcd no longer has.
    await kc(['-n', 'gone', 'delete', 'bucket', 'old']);
    await kc(['-n', 'gone', 'apply', '-f', '-'], yamlOf([bucket('new')]));
    stream.resumeFrom('1');
    try {
      await eventually(
        () => events.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'new'),
        20_000,
      );
      assert.ok(events.some((e) => e.type === 'DELETED' && e.object.metadata.name === 'old'));
      assert.equal(stream.relists, 2, 'the 410 made the stream list again');
    } finally {
      stream.close();
      client.close();
    }
  });

  it('serves examples/hello applied with kubectl (code inline), and a change applied with kubectl makes a new revision', async () => {
    const n = await node();
    const [hello] = docs(join(EXAMPLES, 'hello/kylix.yaml'));
    const bundle = await bundleFunction(join(EXAMPLES, 'hello/hello.ts'));
    await kc(['create', 'namespace', 'hello']);
    await kc(
      ['-n', 'hello', 'apply', '-f', '-'],
      yamlOf([withSpec(hello!, { code: bundle.code.toString() })]),
    );
    await eventually(async () => (await ready('hello', 'hello')) === 'True', 60_000, 200);
    assert.match(await kc(['-n', 'hello', 'get', 'functions']), /^hello\s.*True/m);
    assert.equal(await (await fetch(n.url('/hello?name=k8s'))).text(), 'Hello, k8s!\n');

    const changed = withSpec(hello!, { code: bundle.code.toString() });
    (changed.spec as { env: Record<string, string> }).env = { GREETING: 'Servus' };
    await kc(['-n', 'hello', 'apply', '-f', '-'], yamlOf([changed]));
    await eventually(
      async () => (await (await fetch(n.url('/hello?name=k8s'))).text()) === 'Servus, k8s!\n',
      60_000,
      200,
    );
    const revisions = await kc(['-n', 'hello', 'get', 'revisions', '-o', 'name']);
    assert.match(revisions, /revision\.kylix\.dev\/hello-1/);
    assert.match(revisions, /revision\.kylix\.dev\/hello-2/);
    const owner = JSON.parse(await kc(['-n', 'hello', 'get', 'revision', 'hello-2', '-o', 'json'])).metadata
      .ownerReferences[0];
    const fnUid = JSON.parse(await kc(['-n', 'hello', 'get', 'function', 'hello', '-o', 'json'])).metadata
      .uid;
    assert.deepEqual([owner.kind, owner.name, owner.uid], ['Function', 'hello', fnUid]);
    // What happened is where a Kubernetes user looks: kubectl describe's Events and kubectl get events
    // (core Events naming the Function), not only kylix describe's.
    await eventually(
      async () =>
        /RevisionCreated\s.*Created revision 2/.test(
          await kc(['-n', 'hello', 'describe', 'function', 'hello']),
        ),
      30_000,
      200,
    );
    const described = await kc(['-n', 'hello', 'describe', 'function', 'hello']);
    assert.match(
      described,
      /^Events:\n.*Reason.*\n(.*\n)*\s+Normal\s+RevisionReady\s.*kylix\s+Revision 1 is ready/m,
    );
    const events = JSON.parse(
      await kc([
        '-n',
        'hello',
        'get',
        'events',
        '--field-selector',
        `involvedObject.uid=${fnUid}`,
        '-o',
        'json',
      ]),
    ).items as { involvedObject: Record<string, string>; reason: string }[];
    assert.ok(events.some((e) => e.reason === 'RevisionCreated'));
    assert.deepEqual(
      { ...events[0]?.involvedObject, resourceVersion: undefined },
      {
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        name: 'hello',
        namespace: 'hello',
        uid: fnUid,
        resourceVersion: undefined,
      },
    );

    // Two ways of giving the code: the CRD itself refuses it now (the anyOf/not of crds.ts).
    const two = await kubectl(api.kubeconfig, ['-n', 'hello', 'apply', '-f', '-'], {
      input: yamlOf([withSpec(hello!, { code: 'x', bundle: { sha256: 'a'.repeat(64) } })]),
    });
    assert.notEqual(two.code, 0, two.stdout);
    assert.match(two.stderr, /spec.*must not validate the schema \(not\)/);
    // What the CRD cannot state (an env variable's name) is Kylix's check: the Function says so.
    const badEnv = withSpec(hello!, { code: bundle.code.toString() });
    (badEnv.spec as { env: Record<string, string> }).env = { '1BAD': 'x' };
    await kc(['-n', 'hello', 'apply', '-f', '-'], yamlOf([badEnv]));
    await eventually(async () => (await ready('hello', 'hello')) === 'False', 30_000, 200);
    const reason = await kc([
      '-n',
      'hello',
      'get',
      'function',
      'hello',
      '-o',
      'jsonpath={.status.conditions[0].reason}: {.status.conditions[0].message}',
    ]);
    assert.match(reason, /^Invalid: .*spec\.env\.1BAD/);
    assert.equal(
      await (await fetch(n.url('/hello?name=k8s'))).text(),
      'Servus, k8s!\n',
      'the last good revision keeps serving',
    );

    // Deleted with kubectl while no node runs: the cluster's garbage collector takes the revisions.
    await n.stop();
    await kc(['-n', 'hello', 'delete', 'function', 'hello']);
    await eventually(
      async () => (await kc(['-n', 'hello', 'get', 'revisions', '-o', 'name'])).trim() === '',
      60_000,
      250,
    );
  });

  it('serves examples/shop applied with kubectl: code by URL, from a ConfigMap and inline, every binding, a native Secret', async () => {
    const n = await node();
    const shop = join(EXAMPLES, 'shop');
    await kc(['create', 'namespace', 'shop']);
    // The native Secret takes precedence over the kylix.dev Secret of resources.yaml.
    await kc([
      '-n',
      'shop',
      'create',
      'secret',
      'generic',
      'stripe-key',
      '--from-literal=key=sk_native_cluster',
    ]);
    const resources = docs(join(shop, 'resources.yaml')).map((d) =>
      d.kind === 'Database'
        ? {
            ...d,
            spec: {
              migrationFiles: readdirSync(join(shop, 'migrations'))
                .sort()
                .map((name) => ({ name, sql: readFileSync(join(shop, 'migrations', name), 'utf8') })),
            },
          }
        : d,
    );
    await kc(['-n', 'shop', 'apply', '-f', '-'], yamlOf(resources));
    // kubectl get of a resource kind says which backend serves it and whether it is ready, as kylix get does.
    for (const [kind, name] of [
      ['databases', 'shop'],
      ['keyvalues', 'sessions'],
      ['queues', 'order-events'],
      ['buckets', 'invoices'],
    ] as const)
      await eventually(
        async () =>
          new RegExp(`^NAME\\s+BACKEND\\s+READY\\s+AGE\\n${name}\\s+embedded\\s+True\\s`).test(
            await kc(['-n', 'shop', 'get', kind, name]),
          ),
        60_000,
        200,
      );

    // storefront by URL (a server the nodes can reach), orders from the ConfigMap an upload through
    // Kylix's API stores (what kylix apply does), quote and echo inline.
    const built = Object.fromEntries(
      await Promise.all(
        ['storefront', 'quote', 'echo', 'orders'].map(
          async (f) => [f, await bundleFunction(join(shop, `${f}.ts`))] as const,
        ),
      ),
    );
    let fetched = 0;
    const files: Server = createServer((req, res) => {
      fetched++;
      res.end(req.url === '/storefront.mjs' ? built.storefront!.code : '');
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}/storefront.mjs`;
      const upload = await n.client.raw('POST', '/kylix/v1/bundles', {
        body: built.orders!.code,
        headers: { 'content-type': 'application/javascript', 'kylix-digest': built.orders!.digest },
      });
      assert.equal(upload.status < 300, true);
      const cm = JSON.parse(
        await kc([
          '-n',
          'kylix-system',
          'get',
          'configmap',
          bundleConfigMapName(built.orders!.digest),
          '-o',
          'json',
        ]),
      );
      assert.equal(Buffer.from(cm.binaryData['bundle.mjs'], 'base64').equals(built.orders!.code), true);

      const fns = [...docs(join(shop, 'kylix.yaml')), ...docs(join(shop, 'orders.yaml'))].map((d) => {
        const name = (d.metadata as { name: string }).name;
        if (name === 'storefront') return withSpec(d, { bundle: { url, sha256: built.storefront!.digest } });
        if (name === 'orders') return withSpec(d, { bundle: { sha256: built.orders!.digest.slice(7) } });
        return withSpec(d, { code: built[name]!.code.toString() });
      });
      await kc(['-n', 'shop', 'apply', '-f', '-'], yamlOf(fns));
      for (const f of ['storefront', 'quote', 'echo', 'orders'])
        await eventually(async () => (await ready('shop', f)) === 'True', 90_000, 250);
      for (const [kind, name] of [
        ['database', 'shop'],
        ['keyvalue', 'sessions'],
        ['queue', 'order-events'],
        ['bucket', 'invoices'],
      ])
        await eventually(async () => (await ready('shop', name!, kind)) === 'True', 60_000, 250);
      assert.ok(fetched >= 1);
      const table = await kc(['-n', 'shop', 'get', 'functions']);
      for (const f of ['storefront', 'quote', 'echo', 'orders'])
        assert.match(table, new RegExp(`^${f}\\s.*True`, 'm'));

      assert.equal(((await (await fetch(n.url('/shop'))).json()) as { shop: string }).shop, 'Kylix Coffee');
      const quote = await fetch(n.url('/shop/quote'), {
        method: 'POST',
        body: JSON.stringify({ items: [{ id: 'espresso', quantity: 2 }] }),
      });
      assert.equal(quote.status, 200);
      const order = await fetch(n.url('/shop/orders'), {
        method: 'POST',
        body: JSON.stringify({ items: [{ id: 'grinder', quantity: 1 }] }),
      });
      assert.equal(order.status, 201, JSON.stringify(n.platform.logs.tail('shop', 'orders', 10)));
      const placed = (await order.json()) as { id: string; totalCents: number; signature: string };
      const invoice = `Invoice ${placed.id}: 8900 cents\n`;
      // Signed with the native Secret's value: the binding read the cluster's Secret.
      assert.equal(placed.signature, createHmac('sha256', 'sk_native_cluster').update(invoice).digest('hex'));
      assert.equal(await (await fetch(n.url(`/shop/orders/${placed.id}/invoice`))).text(), invoice);
      // The queue trigger confirmed it.
      await eventually(
        async () =>
          ((await (await fetch(n.url(`/shop/orders/${placed.id}`))).json()) as { status: string }).status ===
          'confirmed',
        30_000,
        200,
      );
    } finally {
      files.close();
    }
  });

  it('stores the bundle of kylix apply in a ConfigMap, and kubectl sees the Function it applied', async () => {
    const n = await node();
    const { applyManifests } = await import('../../src/cli/apply.js');
    const dir = writeProject({
      'app.ts': 'export default { fetch: () => new Response("from kylix apply\\n") };',
      'kylix.yaml':
        'apiVersion: kylix.dev/v1\nkind: Function\nmetadata: { name: cli }\nspec:\n  source: ./app.ts\n  routes: [{ path: /cli }]\n',
    });
    const { ok } = await applyManifests(n.client, [dir], { out: () => {}, timeoutMs: 60_000 });
    assert.equal(ok, true);
    const digest = JSON.parse(await kc(['-n', 'default', 'get', 'function', 'cli', '-o', 'json'])).spec
      .bundle;
    await kc(['-n', 'kylix-system', 'get', 'configmap', bundleConfigMapName(digest)]);
    // Ready may come from another node of the installation (the shop's runs too): this one follows.
    await eventually(
      async () => (await (await fetch(n.url('/cli'))).text()) === 'from kylix apply\n',
      30_000,
      100,
    );
    assert.equal(await ready('default', 'cli'), 'True');
  });
  it('purges a KeyValue deleted with kubectl while no node runs, once a node starts (finalizer)', async () => {
    // No other node: each test node keeps its own embedded data, and any of them would purge its own.
    for (const n of nodes.splice(0)) await n.destroy();
    const first = await node();
    await kc(['create', 'namespace', 'fin']);
    const code = `export default {
      async fetch(request, env) {
        if (request.method === 'PUT') { await env.KV.put('k', await request.text()); return new Response('stored'); }
        return new Response(String(await env.KV.get('k')));
      },
    };`;
    const kv = { apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name: 'cart' }, spec: {} };
    const fn = {
      apiVersion: 'kylix.dev/v1',
      kind: 'Function',
      metadata: { name: 'fin' },
      spec: { code, routes: [{ path: '/fin' }], bindings: { KV: { keyValue: 'cart' } } },
    };
    await kc(['-n', 'fin', 'apply', '-f', '-'], yamlOf([kv, fn]));
    await eventually(async () => (await ready('fin', 'fin')) === 'True', 60_000, 200);
    await eventually(async () => (await ready('fin', 'cart', 'keyvalue')) === 'True', 60_000, 200);
    assert.equal(await (await fetch(first.url('/fin'), { method: 'PUT', body: 'kept' })).text(), 'stored');
    assert.equal(await (await fetch(first.url('/fin'))).text(), 'kept');

    // The annotation brings the finalizer; the node stops; kubectl deletes (the object waits).
    await kc(['-n', 'fin', 'annotate', 'keyvalue', 'cart', 'kylix.dev/purge-on-delete=true']);
    const finalizers = () =>
      kc(['-n', 'fin', 'get', 'keyvalue', 'cart', '-o', 'jsonpath={.metadata.finalizers}']);
    await eventually(async () => (await finalizers()).includes('kylix.dev/purge'), 30_000, 200);
    await first.stop();
    await kc(['-n', 'fin', 'delete', 'keyvalue', 'cart', '--wait=false']);
    assert.match(
      await kc(['-n', 'fin', 'get', 'keyvalue', 'cart', '-o', 'jsonpath={.metadata.deletionTimestamp}']),
      /^\d{4}-/,
      'held by the finalizer while no node runs',
    );

    // A node on the same data purges it and lets it go; applied again, the KeyValue is empty.
    const second = await startNode({
      dataDir: first.dataDir,
      installation: installationSchema.parse({
        backends: { state: { provider: 'kubernetes', kubeconfig: api.kubeconfig } },
      }),
    });
    nodes.push(second);
    await eventually(
      async () =>
        (await kubectl(api.kubeconfig, ['-n', 'fin', 'get', 'keyvalue', 'cart'])).stderr.includes('NotFound'),
      60_000,
      200,
    );
    await kc(['-n', 'fin', 'apply', '-f', '-'], yamlOf([kv]));
    await eventually(async () => (await ready('fin', 'cart', 'keyvalue')) === 'True', 60_000, 200);
    await eventually(async () => (await (await fetch(second.url('/fin'))).text()) === 'null', 30_000, 200);
    // Without the annotation, no finalizer: a plain delete keeps the data, as documented.
    assert.equal(await finalizers(), '');
  });
});
