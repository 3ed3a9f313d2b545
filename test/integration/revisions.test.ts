/**
 * Revisions, traffic, scaling and deploys through the real platform.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { historyCommand, trafficCommand, undoCommand } from '../../src/cli/commands/rollout.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const versioned = (v: string, delayMs = 0) =>
  `export default { async fetch() { ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''} return new Response('${v}'); } };\n`;

/** Sends `total` GETs with `concurrency` callers and counts the bodies (and failures). */
async function hammer(
  url: string,
  total: number,
  concurrency: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const res = await fetch(url, { headers });
        const key = res.status === 200 ? await res.text() : `HTTP ${res.status} ${await res.text()}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

/** GET with an explicit Host header (fetch does not let a caller set it). */
function getWithHost(url: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('revisions and traffic', () => {
  let node: TestNode;
  let dir: string;
  before(async () => {
    node = await startNode();
    dir = writeProject({
      'kylix.yaml': functionManifest('orders', './o.ts', ['/orders']),
      'o.ts': versioned('v1'),
    });
    await apply(node, dir);
    writeFileSync(join(dir, 'o.ts'), versioned('v2'));
    await apply(node, dir);
  });
  after(async () => {
    await node.destroy();
  });

  it('splits traffic 90/10 within 2 percentage points over 10,000 requests', async () => {
    await trafficCommand(node.client, 'orders', ['1=90', '2=10'], []);
    await eventually(
      async () =>
        ((await node.client.get('functions', 'orders')).status?.traffic as unknown[] | undefined)?.length ===
        2,
    );
    const counts = await hammer(node.url('/orders'), 10_000, 32);
    assert.equal(
      (counts.get('v1') ?? 0) + (counts.get('v2') ?? 0),
      10_000,
      `failures: ${JSON.stringify([...counts])}`,
    );
    const share = (counts.get('v2') ?? 0) / 100;
    assert.ok(Math.abs(share - 10) <= 2, `revision 2 got ${share}% of traffic`);
  });

  it('addresses a tagged revision by header and by host prefix, even at 0%', async () => {
    await trafficCommand(node.client, 'orders', ['1=100'], ['2=canary']);
    await eventually(
      async () =>
        (await (await fetch(node.url('/orders'), { headers: { 'kylix-revision': 'canary' } })).text()) ===
        'v2',
    );
    assert.equal(await (await fetch(node.url('/orders'))).text(), 'v1');
    const host = new URL(node.platform.gatewayUrl).host;
    assert.equal(await getWithHost(node.url('/orders'), `canary--${host}`), 'v2');
    assert.equal(await getWithHost(node.url('/orders'), host), 'v1');
    const unknown = await fetch(node.url('/orders'), { headers: { 'kylix-revision': 'nope' } });
    assert.equal(unknown.status, 404);
    assert.match(await historyCommand(node.client, 'orders'), /^1\s+sha256:\S+\s+True\s+100%/m);
  });

  it('rolls back to the previous revision as a new revision', async () => {
    await trafficCommand(node.client, 'orders', [], []);
    await eventually(async () => (await (await fetch(node.url('/orders'))).text()) === 'v2');
    await undoCommand(node.client, 'orders');
    await eventually(async () => (await (await fetch(node.url('/orders'))).text()) === 'v1');
    const fn = await node.client.get('functions', 'orders');
    assert.equal(fn.status?.latestReadyRevision, 3);
    await undoCommand(node.client, 'orders', 2);
    await eventually(async () => (await (await fetch(node.url('/orders'))).text()) === 'v2');
  });

  it('reports the newest revision as latestCreatedRevision when the traffic it names cannot serve', async () => {
    const d = writeProject({
      'kylix.yaml': functionManifest('named', './n.ts', ['/named']),
      'n.ts': versioned('n1'),
    });
    await apply(node, d);
    // Revision 2 throws while loading: revision 1 keeps serving (the fallback).
    writeFileSync(join(d, 'n.ts'), "throw new Error('broken on purpose');\nexport default {};\n");
    await apply(node, d);
    await node.client.json(
      'PATCH',
      node.client.path('functions', 'named'),
      { spec: { traffic: [{ revision: 7, percent: 100 }] } },
      'application/merge-patch+json',
    );
    await eventually(async () => {
      const fn = await node.client.get('functions', 'named');
      const ready = fn.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'False' && fn.metadata.generation === fn.status?.observedGeneration;
    });
    const fn = await node.client.get('functions', 'named');
    assert.equal(fn.status?.latestCreatedRevision, 2);
  });

  it('keeps only revisionHistoryLimit old revisions', async () => {
    const d = writeProject({
      'kylix.yaml': functionManifest('churn', './c.ts', ['/churn'], '  revisionHistoryLimit: 2'),
      'c.ts': versioned('c0'),
    });
    for (let i = 1; i <= 5; i++) {
      writeFileSync(join(d, 'c.ts'), versioned(`c${i}`));
      await apply(node, d);
    }
    const names = (await node.client.list('revisions', { selector: 'kylix.dev/function=churn' }))
      .map((r) => r.metadata.name)
      .sort();
    assert.deepEqual(names, ['churn-3', 'churn-4', 'churn-5']);
  });

  it('fails no request while new revisions deploy under continuous load', async () => {
    const d = writeProject({
      'kylix.yaml': functionManifest('steady', './s.ts', ['/steady']),
      's.ts': versioned('s0', 5),
    });
    await apply(node, d);
    let stop = false;
    const load = (async () => {
      const counts = new Map<string, number>();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (!stop) {
            const res = await fetch(node.url('/steady'));
            const key = res.status === 200 ? 'ok' : `HTTP ${res.status} ${await res.text()}`;
            if (res.status === 200) await res.text();
            counts.set(key, (counts.get(key) ?? 0) + 1);
          }
        }),
      );
      return counts;
    })();
    for (let i = 1; i <= 3; i++) {
      writeFileSync(join(d, 's.ts'), versioned(`s${i}`, 5));
      await apply(node, d);
    }
    stop = true;
    const counts = await load;
    assert.deepEqual([...counts.keys()], ['ok'], JSON.stringify([...counts]));
    assert.ok((counts.get('ok') ?? 0) > 50);
    assert.equal(await (await fetch(node.url('/steady'))).text(), 's3');
  });
});

describe('scaling', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('adds instances under concurrent load, then scales to zero when idle; the next request is a logged cold start', async () => {
    const d = writeProject({
      'kylix.yaml': functionManifest(
        'elastic',
        './e.ts',
        ['/elastic'],
        '  scaling:\n    targetConcurrency: 1\n    maxInstances: 4\n    idleSeconds: 1',
      ),
      'e.ts': versioned('e', 300),
    });
    await apply(node, d);
    const stats = () => node.platform.runtime.stats('default/elastic/1');
    const counts = await hammer(node.url('/elastic'), 24, 8);
    assert.equal(counts.get('e'), 24);
    const grown = stats()?.instances ?? 0;
    assert.ok(grown > 1 && grown <= 4, `expected 2–4 instances under load, saw ${grown}`);
    await eventually(() => stats()?.instances === 0);
    assert.equal(await (await fetch(node.url('/elastic'))).text(), 'e');
    const last = node.platform.logs.tail('default', 'elastic', 1)[0];
    assert.equal(last?.invocation?.cold, true);
    assert.ok((last?.invocation?.startupMs ?? 0) > 0);
    assert.ok((stats()?.coldStarts.length ?? 0) >= 1);
  });
});
