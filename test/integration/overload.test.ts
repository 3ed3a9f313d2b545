/**
 * Overload end to end: a slow function flooded with far more concurrent requests than it may
 * serve. Some are refused at once with 429/503 and Retry-After, every admitted one is served, a
 * neighbour function still answers, and once the flood is over the next request is served.
 */
import assert from 'node:assert/strict';
import { Agent, get } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

/**
 * Requests sent at once: eight times what the function may serve (its limit, at most
 * maxConcurrency 50, and its queue). The function takes 500 ms, longer than the gateway (in this
 * same process) needs to accept all of them, so they really do arrive while the first are served.
 */
const FLOOD = 400;

describe('overload', () => {
  let node: TestNode;
  // One connection per request, so the flood really is concurrent.
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  before(async () => {
    node = await startNode();
    const dir = writeProject({
      'kylix.yaml': [
        functionManifest(
          'slow',
          './slow.js',
          ['/slow'],
          'limits:\n  maxConcurrency: 50'.replace(/^/gm, '  '),
        ),
        '---',
        functionManifest('neighbour', './n.js', ['/neighbour']),
      ].join('\n'),
      'slow.js':
        "export default { async fetch() { await new Promise((r) => setTimeout(r, 500)); return new Response('slow done'); } };",
      'n.js': "export default { fetch() { return new Response('neighbour ok'); } };",
    });
    const { ok } = await apply(node, dir);
    assert.ok(ok);
  });
  after(async () => {
    agent.destroy();
    await node.destroy();
  });

  const timed = (path: string) =>
    new Promise<{ status: number; body: string; retryAfter?: string; ms: number }>((resolve, reject) => {
      const t0 = performance.now();
      get(node.url(path), { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            retryAfter: res.headers['retry-after'],
            ms: performance.now() - t0,
          }),
        );
      }).on('error', reject);
    });

  it('refuses past the limit quickly with Retry-After, serves every admitted request, and keeps the neighbour and the function answering', async () => {
    assert.equal((await timed('/slow')).status, 200, 'warm before the flood');
    const flood = Promise.all(Array.from({ length: FLOOD }, () => timed('/slow')));
    const neighbour = await timed('/neighbour');
    const results = await flood;

    assert.equal(neighbour.status, 200);
    assert.equal(neighbour.body, 'neighbour ok');

    const served = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429 || r.status === 503);
    assert.equal(
      served.length + refused.length,
      FLOOD,
      `statuses: ${[...new Set(results.map((r) => r.status))]}`,
    );
    assert.ok(served.length >= 40, `served ${served.length}`);
    assert.ok(refused.length >= 10, `refused ${refused.length}`);
    assert.ok(served.every((r) => r.body === 'slow done'));
    assert.ok(refused.every((r) => r.retryAfter === '1'));
    for (const r of refused) {
      const code = (JSON.parse(r.body) as { error: { code: string } }).error.code;
      assert.equal(code, r.status === 429 ? 'ERR_TOO_MANY_REQUESTS' : 'ERR_OVERLOADED');
    }
    // A refusal does no instance work: it comes back before the served requests do.
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const refusedMs = median(refused.map((r) => r.ms));
    const servedMs = median(served.map((r) => r.ms));
    assert.ok(refusedMs < servedMs, `refusals took ${refusedMs} ms (median), served ones ${servedMs} ms`);

    const afterwards = await timed('/slow');
    assert.equal(afterwards.status, 200);
    assert.equal(afterwards.body, 'slow done');
  });
});
