/**
 * Hostile input to the control API: namespaces and names in URLs that are not DNS labels, bodies
 * whose kind differs from their URL, and malformed bodies whose errors must not quote them back.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startNode, type TestNode } from '../helpers/platform.js';

interface Status {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details: { code: string; causes?: { field: string; message: string }[] };
}

const CANARY = 'canary-7f3e2a-do-not-echo';
const HUGE = 'x'.repeat(4000);

describe('control API input', () => {
  let node: TestNode;
  let api = '';
  /** One request with the path sent exactly as written (fetch would resolve "..", "%2e%2e"). */
  const call = (method: string, path: string, body?: string, type = 'application/json') =>
    new Promise<{ status: number; text: string; json: () => Status }>((resolve, reject) => {
      const base = new URL(api);
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          path: `${base.pathname}${path}`,
          method,
          headers: body === undefined ? {} : { 'content-type': type },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as Status });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  /** Asserts a Kubernetes Status refusal that does not repeat `secret` and stays short. */
  const refused = async (
    r: Awaited<ReturnType<typeof call>>,
    statuses: number[],
    secret?: string,
  ): Promise<Status> => {
    assert.ok(statuses.includes(r.status), `status ${r.status}: ${r.text.slice(0, 300)}`);
    const s = r.json();
    assert.equal(s.kind, 'Status');
    assert.equal(s.status, 'Failure');
    assert.ok(['Invalid', 'BadRequest'].includes(s.reason), s.reason);
    assert.ok(r.text.length < 1200, `a ${r.text.length}-byte Status: ${r.text.slice(0, 200)}…`);
    if (secret) assert.ok(!r.text.includes(secret), `the Status repeats the input: ${r.text}`);
    return s;
  };

  before(async () => {
    node = await startNode();
    api = `${node.platform.apiUrl}/apis/kylix.dev/v1`;
    const kv = await call(
      'POST',
      '/namespaces/default/keyvalues',
      JSON.stringify({ apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name: 'store' }, spec: {} }),
    );
    assert.equal(kv.status, 201, kv.text);
    const q = await call(
      'POST',
      '/namespaces/default/queues',
      JSON.stringify({ apiVersion: 'kylix.dev/v1', kind: 'Queue', metadata: { name: 'q' }, spec: {} }),
    );
    assert.equal(q.status, 201, q.text);
  });
  after(async () => {
    await node.destroy();
  });

  const badLabels = [
    'Abc',
    'a@b',
    'a%2fb',
    'a%2Fb',
    '..',
    '%2e%2e',
    '..%2f..%2fetc',
    '%00',
    'a%00b',
    'a_b',
    '-a',
    'a-',
    'a.b',
    'a%20b',
    '%C3%A4',
    'a'.repeat(64),
    HUGE,
  ];

  it('refuses a namespace that is not a DNS label, on every kind of route', async () => {
    for (const ns of badLabels) {
      for (const [method, path, body] of [
        ['GET', `/namespaces/${ns}/keyvalues`],
        ['GET', `/namespaces/${ns}/keyvalues/store`],
        ['POST', `/namespaces/${ns}/keyvalues`, '{"kind":"KeyValue","metadata":{"name":"k"},"spec":{}}'],
        ['DELETE', `/namespaces/${ns}/keyvalues/store`],
        ['GET', `/namespaces/${ns}/functions/f/log`],
        ['GET', `/namespaces/${ns}/functions/f/stats`],
        ['GET', `/namespaces/${ns}/functions/f/proxy/x`],
        ['GET', `/namespaces/${ns}/keyvalues/store/keys/k`],
        ['GET', `/namespaces/${ns}/nosuchkind`],
      ] as const) {
        const s = await refused(await call(method, path, body), [400], ns.length > 100 ? ns : undefined);
        assert.equal(s.code, 400);
        if (!/^(\.|%2e)+$/.test(ns))
          assert.equal(s.details.causes?.[0]?.field, 'metadata.namespace', `${method} ${path.slice(0, 80)}`);
      }
    }
  });

  it('refuses an object name that is not a DNS label, in reads, writes and data routes', async () => {
    for (const name of badLabels) {
      for (const [method, path, body] of [
        ['GET', `/namespaces/default/keyvalues/${name}`],
        ['PUT', `/namespaces/default/keyvalues/${name}`, '{}'],
        ['PATCH', `/namespaces/default/keyvalues/${name}`, '{}'],
        ['DELETE', `/namespaces/default/keyvalues/${name}`],
        ['GET', `/namespaces/default/functions/${name}/log`],
        ['GET', `/namespaces/default/keyvalues/${name}/keys`],
        ['POST', `/namespaces/default/queues/${name}/messages`, '{}'],
      ] as const) {
        const s = await refused(await call(method, path, body), [400], name.length > 100 ? name : undefined);
        if (!/^(\.|%2e)+$/.test(name))
          assert.equal(s.details.causes?.[0]?.field, 'metadata.name', `${method} ${path.slice(0, 80)}`);
      }
    }
  });

  it('truncates a long name it reports, and never reads a log outside the log folder', async () => {
    const r = await call('GET', `/namespaces/${HUGE}/keyvalues`);
    const s = await refused(r, [400], HUGE);
    assert.match(s.message, /"x{64}"… \(4000 characters\)/);
    const log = await call('GET', '/namespaces/..%2f..%2f..%2fetc/functions/passwd/log');
    await refused(log, [400]);
  });

  it('still serves valid names, and names of kinds Kylix writes (revisions, events) as DNS subdomains', async () => {
    assert.equal((await call('GET', '/namespaces/default/keyvalues/store')).status, 200);
    assert.equal((await call('GET', '/namespaces/a-b/keyvalues')).status, 200);
    const longRevision = `${'f'.repeat(63)}-12`;
    assert.equal((await call('GET', `/namespaces/default/revisions/${longRevision}`)).status, 404);
    assert.equal((await call('GET', '/namespaces/default/events/f.lq3x9a1b2c3')).status, 404);
    await refused(await call('GET', '/namespaces/default/events/F.x'), [400]);
  });

  it('refuses a body whose kind or apiVersion is not its URL’s, in every write verb', async () => {
    const secret = JSON.stringify({
      apiVersion: 'kylix.dev/v1',
      kind: 'Secret',
      metadata: { name: 'store' },
      spec: { stringData: { k: 'v' } },
    });
    const cases = [
      ['POST', '/namespaces/default/keyvalues', secret, 'application/json'],
      ['PUT', '/namespaces/default/keyvalues/store', secret, 'application/json'],
      ['PATCH', '/namespaces/default/keyvalues/store', '{"kind":"Secret"}', 'application/merge-patch+json'],
      ['PATCH', '/namespaces/default/keyvalues/store', secret, 'application/apply-patch+yaml'],
      [
        'PATCH',
        '/namespaces/default/keyvalues/store',
        'apiVersion: kylix.dev/v1\nkind: Secret\nmetadata:\n  name: store\nspec:\n  stringData: {k: v}\n',
        'application/apply-patch+yaml',
      ],
    ] as const;
    for (const [method, path, body, type] of cases) {
      const s = await refused(await call(method, path, body, type), [400]);
      assert.match(s.message, /kind "Secret" does not match the URL, which is for keyvalues/);
      assert.equal(s.details.causes?.[0]?.field, 'kind');
    }
    for (const apiVersion of ['v1', 'kylix.dev/v2', 'apps/v1']) {
      const body = JSON.stringify({ apiVersion, kind: 'KeyValue', metadata: { name: 'other' }, spec: {} });
      const s = await refused(await call('POST', '/namespaces/default/keyvalues', body), [400]);
      assert.match(s.message, /apiVersion .* does not match the URL, which is for kylix\.dev\/v1/);
    }
    const huge = JSON.stringify({ kind: HUGE, metadata: { name: 'store' } });
    await refused(await call('PUT', '/namespaces/default/keyvalues/store', huge), [400], HUGE);
    // Nothing was written as a Secret, and the KeyValue is unchanged.
    assert.equal((await call('GET', '/namespaces/default/secrets/store')).status, 404);
    assert.equal((await call('GET', '/namespaces/default/keyvalues/store')).json().kind, 'KeyValue');
  });

  it('says where malformed YAML is, by line and column, without quoting the line', async () => {
    const yaml = `apiVersion: kylix.dev/v1\nkind: Secret\nmetadata:\n  name: s\nspec:\n  stringData:\n    key: [${CANARY}\n   bad: indent: here\n`;
    const r = await call('PATCH', '/namespaces/default/secrets/s', yaml, 'application/apply-patch+yaml');
    const s = await refused(r, [400], CANARY);
    assert.match(s.message, /not valid YAML \([A-Z_]+ ?at line \d+, column \d+\)/);
    for (const bad of [`a: b: ${CANARY}`, `- ${CANARY}\n key: x`, `"${CANARY}`, `{${CANARY}: [}`]) {
      const t = await call('POST', '/namespaces/default/secrets', bad, 'application/yaml');
      const st = await refused(t, [400], CANARY);
      assert.match(st.message, /line \d+, column \d+/);
    }
  });

  it('reports malformed JSON without quoting it, with the position when the parser gives one', async () => {
    for (const bad of [
      `{"spec": ${CANARY}}`,
      `{"a": "${CANARY}",\n "b" 1}`,
      `{"a": "${CANARY}"`,
      `${CANARY}`,
      `{"a": 1}}${CANARY}`,
    ]) {
      for (const path of ['/namespaces/default/keyvalues', '/namespaces/default/queues/q/messages']) {
        const s = await refused(await call('POST', path, bad), [400], CANARY);
        assert.match(s.message, /not valid JSON/);
      }
    }
    const s = (await call('POST', '/namespaces/default/keyvalues', '{"a": 1,\n "b" 2}')).json();
    assert.match(s.message, /line 2, column 6/);
  });

  it('does not echo a huge unknown path or resource type', async () => {
    const r = await call('GET', `/${HUGE}`);
    assert.equal(r.status, 404);
    assert.ok(!r.text.includes(HUGE) && r.text.length < 1200, r.text.slice(0, 200));
    const t = await call('GET', `/namespaces/default/${HUGE}`);
    assert.equal(t.status, 404);
    assert.ok(!t.text.includes(HUGE) && t.text.length < 1200, t.text.slice(0, 200));
  });
});
