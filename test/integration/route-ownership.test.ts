/**
 * Routes are owned (DESIGN.md §5), end to end: once one namespace serves a host or path, another
 * namespace can neither apply an overlapping route (admission says which namespace and function own
 * it) nor, should two admissions race, take its traffic at the gateway.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { applyManifests } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import type { KylixError } from '../../src/errors.js';
import type { RouteSpec } from '../../src/resources/kinds.js';
import { eventually } from '../helpers/eventually.js';
import { startNode, type TestNode, writeProject } from '../helpers/platform.js';

/** A one-function project answering `body`, with routes written out in full (hosts, methods). */
function project(name: string, body: string, routes: RouteSpec[]): string {
  const lines = routes.map(
    (r) =>
      `    - path: "${r.path}"${r.host ? `\n      host: "${r.host}"` : ''}${r.methods ? `\n      methods: [${r.methods.join(', ')}]` : ''}`,
  );
  return writeProject({
    'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\nspec:\n  source: ./f.js\n  routes:\n${lines.join('\n')}\n`,
    'f.js': `export default { fetch() { return new Response(${JSON.stringify(body)}); } };\n`,
  });
}

/** GET through the gateway with a chosen Host header: "<status> <body>". */
function get(node: TestNode, path: string, host = 'localhost'): Promise<string> {
  const url = new URL(node.url(path));
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve(`${res.statusCode} ${text}`));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('routes are owned across namespaces', () => {
  let node: TestNode;
  let teamA: ApiClient;
  let teamB: ApiClient;
  const applyAs = (client: ApiClient, dir: string) => applyManifests(client, [dir], { out: () => {} });

  /** Team A's traffic, which no variant may take. */
  async function teamAKeepsItsTraffic(): Promise<void> {
    assert.equal(await get(node, '/api/users'), '200 A');
    assert.equal(await get(node, '/api/users', 'example.com'), '200 A');
    assert.equal(await get(node, '/api', 'Example.com:8080'), '200 A');
    assert.equal(await get(node, '/api/orders/7', 'shop.example.com'), '200 A');
    assert.equal(await get(node, '/', 'shop.example.com'), '200 A-shop');
    assert.equal(await get(node, '/', 'shop.example.com:8080'), '200 A-shop');
  }

  before(async () => {
    node = await startNode();
    const client = (namespace: string) => new ApiClient({ server: node.platform.apiUrl, namespace });
    teamA = client('team-a');
    teamB = client('team-b');
    assert.ok((await applyAs(teamA, project('api', 'A', [{ path: '/api/*' }]))).ok);
    assert.ok(
      (await applyAs(teamA, project('shop', 'A-shop', [{ path: '/', host: 'shop.example.com' }]))).ok,
    );
    assert.ok((await applyAs(teamB, project('b', 'B', [{ path: '/b/*' }]))).ok);
    await teamAKeepsItsTraffic();
    assert.equal(await get(node, '/b/x'), '200 B');
  });
  after(async () => {
    await node.destroy();
  });

  const variants: [string, RouteSpec, string][] = [
    ['a host-qualified copy of a host-less route', { path: '/api/*', host: 'example.com' }, 'api'],
    ['a literal path under a wildcard', { path: '/api/users' }, 'api'],
    ['a parameter under a wildcard', { path: '/api/:id' }, 'api'],
    ['the bare prefix of a wildcard', { path: '/api' }, 'api'],
    ['a catch-all', { path: '/*' }, 'api'],
    [
      'a host-qualified literal under a wildcard, other methods',
      { path: '/api/users', host: 'example.com', methods: ['POST'] },
      'api',
    ],
    ['a wildcard host over an exact host', { path: '/', host: '*.example.com' }, 'shop'],
    ['the same host with a port', { path: '/', host: 'shop.example.com:8080' }, 'shop'],
    ['a host-less route over a host-qualified one', { path: '/' }, 'shop'],
    ['a revision-tag address of an owned host', { path: '/', host: 'rc--shop.example.com' }, 'shop'],
  ];
  for (const [what, route, owner] of variants) {
    it(`refuses ${what} from another namespace, naming the owner`, async () => {
      // Both as a new function and as an update of an existing one.
      for (const [name, routes] of [
        ['thief', [route]],
        ['b', [{ path: '/b/*' }, route]],
      ] as const) {
        await assert.rejects(applyAs(teamB, project(name, 'B', [...routes])), (err: KylixError) => {
          assert.equal(err.code, 'ERR_ROUTE_CONFLICT');
          assert.match(err.message, new RegExp(`namespace "team-a" owns \\(function "${owner}"\\)`));
          const cause = err.causes.find((c) => c.field === `spec.routes[${routes.length - 1}]`);
          assert.ok(cause, JSON.stringify(err.causes));
          assert.match(cause.message, new RegExp(`of function "${owner}" in namespace "team-a"`));
          assert.ok(cause.message.includes(`${route.host ?? ''}${route.path}"`), cause.message);
          return true;
        });
      }
      await assert.rejects(teamB.get('functions', 'thief'), (e: KylixError) => e.code === 'ERR_NOT_FOUND');
      await teamAKeepsItsTraffic();
      assert.equal(await get(node, '/b/x'), '200 B');
    });
  }

  it('lets another namespace serve hosts and paths nobody owns', async () => {
    const routes = [
      { path: '/apix' },
      { path: '/other', host: 'other.example.com' },
      { path: '/b2/:id', host: 'b.example.org' },
    ];
    assert.ok((await applyAs(teamB, project('neighbour', 'B2', routes))).ok);
    assert.equal(await get(node, '/apix'), '200 B2');
    assert.equal(await get(node, '/other', 'other.example.com'), '200 B2');
    assert.equal(await get(node, '/b2/7', 'b.example.org'), '200 B2');
    await teamAKeepsItsTraffic();
  });

  it('keeps the most specific match within one namespace', async () => {
    assert.ok((await applyAs(teamA, project('users', 'A-users', [{ path: '/api/users' }]))).ok);
    assert.equal(await get(node, '/api/users', 'example.com'), '200 A-users');
    assert.equal(await get(node, '/api/orders'), '200 A');
    await assert.rejects(
      applyAs(teamA, project('users-copy', 'A', [{ path: '/api/users' }])),
      (err: KylixError) => err.code === 'ERR_ROUTE_CONFLICT' && /another function serves/.test(err.message),
    );
    await teamA.raw('DELETE', teamA.path('functions', 'users'));
    await eventually(async () => (await get(node, '/api/users')) === '200 A');
  });

  it('does not serve another namespace a route that slipped past admission (a race on a fleet)', async () => {
    // What a second admission racing the first would have stored: the write goes to the store directly.
    const b = await node.platform.registry.get('Function', 'team-b', 'b');
    const generation = b.metadata.generation + 1;
    await node.platform.registry.store.put(
      {
        ...b,
        metadata: { ...b.metadata, generation },
        spec: {
          ...b.spec,
          routes: [{ path: '/b/*' }, { path: '/api/users' }, { path: '/', host: 'shop.example.com' }],
        },
      },
      { resourceVersion: b.metadata.resourceVersion },
    );
    await eventually(async () => {
      const now = await node.platform.registry.get('Function', 'team-b', 'b');
      return now.status?.observedGeneration === generation && now.status?.latestReadyRevision === 2;
    }, 30_000);
    assert.equal(await get(node, '/b/y'), '200 B', 'the new revision serves its own routes');
    await teamAKeepsItsTraffic();
    assert.deepEqual(
      node.platform.gateway.router
        .refused()
        .map((r) => `${r.functionKey} ${r.route.host ?? ''}${r.route.path} -> ${r.owner}`)
        .sort(),
      ['team-b/b /api/users -> team-a/api', 'team-b/b shop.example.com/ -> team-a/shop'],
    );
  });

  it('hands a route on once its owner deletes it', async () => {
    await teamA.raw('DELETE', teamA.path('functions', 'shop'));
    await eventually(async () => (await get(node, '/', 'shop.example.com')) === '200 B');
    assert.equal(await get(node, '/api/users'), '200 A');
  });
});
