/**
 * examples/shop with every binding, through the real platform, on two installations: embedded
 * backends, and the fleet backends (PostgreSQL, Redis, NATS JetStream, S3). The manifests and code
 * are the same; only the installation config differs, and so the assertions are the same too.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeCommand } from '../../src/cli/commands/describe.js';
import { type Installation, loadInstallation } from '../../src/config/installation.js';
import type { KylixError } from '../../src/errors.js';
import { invokeEvent } from '../../src/runtime/deliver-event.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { scratchSchema } from '../helpers/postgres.js';
import { reachable } from '../helpers/reachable.js';
import { startS3rver } from '../helpers/s3rver.js';
import { tempDir } from '../helpers/temp-dir.js';

const SHOP = fileURLToPath(new URL('../../examples/shop/', import.meta.url));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill();
});

/** The fleet installation, or why it cannot run here. */
async function fleet(): Promise<{ installation?: Installation; skip?: string }> {
  const urls = {
    redis: 'redis://127.0.0.1:6379',
    postgres: 'postgres://postgres@127.0.0.1:5432/postgres',
    nats: 'nats://127.0.0.1:4222',
  };
  for (const [name, url] of Object.entries(urls)) {
    const problem = await reachable(url);
    if (problem) return { skip: `${name} is not reachable at ${url}: ${problem}` };
  }
  const dir = tempDir('s3');
  const s3 = await startS3rver(dir, children);
  if (!s3.endpoint) return { skip: `no S3 server: ${s3.reason}` };
  return {
    installation: loadInstallation(undefined, {
      KYLIX_REDIS_URL: urls.redis,
      KYLIX_POSTGRES_URL: urls.postgres,
      KYLIX_STATE_URL: urls.postgres,
      KYLIX_STATE_SCHEMA: scratchSchema('kylix_e2e'),
      KYLIX_NATS_URL: urls.nats,
      KYLIX_S3_ENDPOINT: s3.endpoint,
      KYLIX_S3_BUCKET: 'kylix-e2e',
      KYLIX_S3_ACCESS_KEY_ID: 'S3RVER',
      KYLIX_S3_SECRET_ACCESS_KEY: 'S3RVER',
    }),
  };
}

function shopSuite(config: string, setup: () => Promise<{ installation?: Installation; skip?: string }>) {
  describe(`examples/shop on the ${config} backends`, () => {
    let node: TestNode | undefined;
    let skip: string | undefined;
    // A fresh namespace per run: fleet backends keep data between runs.
    const ns = `t${randomBytes(4).toString('hex')}`;
    before(async () => {
      const s = await setup();
      skip = s.skip;
      if (skip) {
        console.log(`# skipping the ${config} suite: ${skip}`);
        return;
      }
      node = await startNode({
        installation: s.installation,
        namespace: ns,
        consumer: { backoffBaseSeconds: 0.05, waitMs: 100 },
      });
      const { ok } = await apply(node, SHOP);
      assert.ok(ok, 'examples/shop applies');
    });
    after(async () => {
      if (!node) return;
      // Leave nothing behind in the fleet backends.
      for (const [plural, name] of [
        ['databases', 'shop'],
        ['keyvalues', 'sessions'],
        ['queues', 'order-events'],
        ['queues', 'order-events-dlq'],
        ['buckets', 'invoices'],
      ] as const) {
        await node.client
          .raw('DELETE', `${node.client.path(plural, name)}?purge=true`)
          .catch(() => undefined);
      }
      await node.platform.close();
      rmSync(node.dataDir, { recursive: true, force: true });
    });

    it('places an order: SQL transaction, bucket, cache, queue and secret in one request', async (t) => {
      if (skip || !node) return t.skip(skip);
      const res = await fetch(node.url('/shop/orders'), {
        method: 'POST',
        body: JSON.stringify({ items: [{ id: 'espresso', quantity: 2 }] }),
      });
      assert.equal(res.status, 201, JSON.stringify(node.platform.logs.tail(ns, 'orders', 5)));
      const order = (await res.json()) as { id: string; totalCents: number; signature: string };
      assert.equal(order.totalCents, 4980);
      const invoice = `Invoice ${order.id}: 4980 cents\n`;
      assert.equal(
        order.signature,
        createHmac('sha256', 'sk_test_development_only').update(invoice).digest('hex'),
      );
      assert.equal(await (await fetch(node.url(`/shop/orders/${order.id}/invoice`))).text(), invoice);
      // The queue consumer confirms the order.
      await eventually(
        async () =>
          ((await (await fetch(node!.url(`/shop/orders/${order.id}`))).json()) as { status: string })
            .status === 'confirmed',
      );
      const got = (await (await fetch(node.url(`/shop/orders/${order.id}`))).json()) as {
        cached: boolean;
        total_cents: number;
      };
      assert.deepEqual([got.cached, got.total_cents], [true, 4980]);
    });

    it('delivers a poison message maxRetries + 1 times, then dead-letters it; redrive puts it back', async (t) => {
      if (skip || !node) return t.skip(skip);
      await node.client.json('POST', `${node.client.path('queues', 'order-events')}/messages`, {
        body: { orderId: '999999' },
      });
      await eventually(async () => {
        const { data } = await node!.client.json<{ messages: unknown[] }>(
          'GET',
          `${node!.client.path('queues', 'order-events-dlq')}/messages`,
        );
        return data.messages.length === 1;
      }, 20_000);
      const notes = node.platform.logs
        .tail(ns, 'orders', 1000)
        .filter((e) => /failed 4 deliveries; moved to order-events-dlq/.test(e.message));
      assert.equal(notes.length, 1);
      const { data } = await node.client.json<{ moved: number }>(
        'POST',
        `${node.client.path('queues', 'order-events-dlq')}/redrive`,
        { to: 'order-events' },
      );
      assert.equal(data.moved, 1);
      // Back in the queue, it is delivered again (and, still poison, dead-lettered again).
      await eventually(
        () =>
          node!.platform.logs
            .tail(ns, 'orders', 1000)
            .filter((e) => /failed 4 deliveries; moved to order-events-dlq/.test(e.message)).length === 2,
        20_000,
      );
    });

    it('runs scheduled() with the bindings of its revision', async (t) => {
      if (skip || !node) return t.skip(skip);
      const fn = await node.client.get('functions', 'orders');
      await invokeEvent(
        node.platform.runtime,
        `${ns}/orders/${fn.status?.latestReadyRevision}`,
        'scheduled',
        { cron: '*/5 * * * *', scheduledTime: 1_700_000_000_000 },
        10_000,
      );
      const report = JSON.parse(
        await (
          await node.client.raw('GET', `${node.client.path('keyvalues', 'sessions')}/keys/report:latest`)
        ).text(),
      ) as { at: number };
      assert.equal(report.at, 1_700_000_000_000);
    });

    it('describe shows each binding with its backend and health', async (t) => {
      if (skip || !node) return t.skip(skip);
      const text = await describeCommand(node.client, 'function', 'orders');
      const backend = config === 'embedded' ? 'embedded' : 'postgres';
      assert.match(text, new RegExp(`DB\\s+database\\s+shop\\s+${backend}\\s+ok`));
      assert.match(text, /STRIPE\s+secret\s+stripe-key\s+-\s+present/);
    });

    it('refuses a binding to a resource that does not exist, and never shows a secret value', async (t) => {
      if (skip || !node) return t.skip(skip);
      const dir = writeProject({
        'kylix.yaml': functionManifest(
          'ghost',
          './g.ts',
          ['/ghost'],
          '  bindings:\n    GHOST: { keyValue: no-such-kv }',
        ),
        'g.ts':
          'export default { async fetch(req, env) { try { await env.GHOST.get("k"); return new Response("reached"); } catch (e) { return new Response(String(e.message), { status: 403 }); } } };',
      });
      // kylix apply refuses it, applying nothing …
      await assert.rejects(apply(node, dir), (err: KylixError) => {
        assert.equal(err.code, 'ERR_MANIFEST_INVALID');
        assert.match(JSON.stringify(err.causes), /KeyValue \\"no-such-kv\\" does not exist in namespace/);
        return true;
      });
      assert.equal((await fetch(node.url('/ghost'))).status, 404);
      // … and written through the API alone, the function is not Ready, saying why, and its route says so.
      await node.client.json(
        'PATCH',
        node.client.path('functions', 'ghost'),
        {
          apiVersion: 'kylix.dev/v1',
          kind: 'Function',
          metadata: { name: 'ghost' },
          spec: {
            source: './g.ts',
            bundle: (await node.client.get('functions', 'orders')).spec?.bundle,
            routes: [{ path: '/ghost' }],
            bindings: { GHOST: { keyValue: 'no-such-kv' } },
          },
        },
        'application/apply-patch+yaml',
      );
      const readyOf = async () =>
        (
          (await node!.client.get('functions', 'ghost')).status?.conditions as
            | { type: string; status: string; message: string }[]
            | undefined
        )?.find((c) => c.type === 'Ready');
      await eventually(async () => (await readyOf())?.status === 'False');
      assert.match(
        (await readyOf())?.message ?? '',
        /binding GHOST names KeyValue "no-such-kv", which does not exist/,
      );
      const res = await fetch(node.url('/ghost'));
      assert.equal(res.status, 503);
      assert.match(await res.text(), /ERR_FUNCTION_NOT_STARTED/);
      await node.client.raw('DELETE', node.client.path('functions', 'ghost'));
      const secret = JSON.stringify(await node.client.get('secrets', 'stripe-key'));
      assert.doesNotMatch(secret, /sk_test_development_only/);
    });
  });
}

shopSuite('embedded', async () => ({}));
shopSuite('fleet', fleet);
