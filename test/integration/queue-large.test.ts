/**
 * Queue batches of large messages through a real node: a batch of ten 300 KB messages (3 MB of
 * bodies, past what one event head used to carry) reaches the consumer whole. The instance used
 * to be ended for the oversized event on every delivery, until the messages were dropped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const APP = `
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname.endsWith('/seen')) {
      const { keys } = await env.SEEN.list();
      return Response.json(await Promise.all(keys.map(async (k) => k.name + '=' + (await env.SEEN.get(k.name)))));
    }
    const pad = 'x'.repeat(300_000);
    await env.BIG.sendBatch(Array.from({ length: 10 }, (_, i) => ({ body: { i, pad } })));
    return new Response('sent');
  },
  async queue(batch, env) {
    for (const m of batch.messages) await env.SEEN.put('m' + m.body.i, String(m.body.pad.length));
  },
};
`;

describe('a queue batch of large messages', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ consumer: { waitMs: 50 } });
    const { ok } = await apply(
      node,
      writeProject({
        'kylix.yaml': [
          'apiVersion: kylix.dev/v1\nkind: Queue\nmetadata: { name: big }\nspec: {}',
          '---',
          'apiVersion: kylix.dev/v1\nkind: KeyValue\nmetadata: { name: seen }\nspec: {}',
          '---',
          functionManifest(
            'bigq',
            './app.js',
            ['/bigq', '/bigq/seen'],
            [
              '  bindings:',
              '    BIG: { queue: big }',
              '    SEEN: { keyValue: seen }',
              '  triggers:',
              '    queue: { name: big, batchSize: 10, maxRetries: 1 }',
            ].join('\n'),
          ),
        ].join('\n'),
        'app.js': APP,
      }),
    );
    assert.ok(ok, 'applies');
  });
  after(() => node.destroy());

  it('reaches the consumer whole, every message once', async () => {
    const res = await fetch(node.url('/bigq'), { method: 'POST' });
    assert.equal(await res.text(), 'sent');
    const seen = async () => (await (await fetch(node.url('/bigq/seen'))).json()) as string[];
    await eventually(async () => (await seen()).length === 10, 30_000);
    assert.deepEqual((await seen()).sort(), Array.from({ length: 10 }, (_, i) => `m${i}=300000`).sort());
    const logs = node.platform.logs.tail('default', 'bigq', 50).map((l) => JSON.stringify(l));
    assert.ok(!logs.some((l) => /failed|stopped/.test(l)), logs.join('\n'));
  });
});
