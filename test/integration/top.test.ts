/**
 * `kylix top` against a running node: the requests made during its interval show up as a rate,
 * percentiles, errors and instances per function.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseExposition, quantile, type TopRow, topCommand } from '../../src/cli/commands/top.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

describe('kylix top', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    const dir = writeProject({
      'kylix.yaml': functionManifest('busy', './b.ts', ['/busy']),
      'b.ts':
        "export default { fetch(req) { if (new URL(req.url).searchParams.has('fail')) throw new Error('no'); return new Response('ok'); } };\n",
    });
    assert.ok((await apply(node, dir)).ok);
  });
  after(async () => {
    await node.destroy();
  });

  /** Instead of waiting, the interval is spent sending 8 good requests and 2 that throw. */
  const traffic = async () => {
    for (let i = 0; i < 8; i++) await (await fetch(node.url('/busy'))).text();
    for (let i = 0; i < 2; i++) await (await fetch(node.url('/busy?fail'))).text();
  };

  it('--once -o json: rates, percentiles, errors and instances over the interval', async () => {
    let out = '';
    await topCommand(node.client, { once: true, interval: '2', output: 'json' }, (t) => (out += t), traffic);
    const { intervalSeconds, functions } = JSON.parse(out) as {
      intervalSeconds: number;
      functions: TopRow[];
    };
    assert.equal(intervalSeconds, 2);
    const busy = functions.find((f) => f.function === 'busy');
    assert.ok(busy, out);
    assert.equal(busy.namespace, 'default');
    assert.equal(busy.requestsPerSecond, 5);
    assert.equal(busy.errors, 2);
    assert.ok(busy.p50Ms !== null && busy.p50Ms > 0 && busy.p99Ms !== null && busy.p99Ms >= busy.p50Ms);
    assert.ok(busy.instances >= 1);
  });

  it('--once prints one table', async () => {
    let out = '';
    await topCommand(node.client, { once: true, interval: '1' }, (t) => (out += t), traffic);
    assert.match(out, /^NAMESPACE\s+FUNCTION\s+REQ\/S\s+P50 MS\s+P99 MS\s+ERRORS\s+INSTANCES/m);
    assert.match(out, /^default\s+busy\s+10\.0\s+\S+\s+\S+\s+2\s+\d+/m);
  });

  it('estimates quantiles as Prometheus does and reads the exposition format', () => {
    assert.equal(
      quantile(0.5, [
        [0.1, 50],
        [0.2, 100],
        [Number.POSITIVE_INFINITY, 100],
      ]),
      0.1,
    );
    assert.equal(quantile(0.5, []), null);
    assert.deepEqual(parseExposition('# HELP x y\nx_total{a="b\\"c"} 3\nup 1\n'), [
      { name: 'x_total', labels: { a: 'b"c' }, value: 3 },
      { name: 'up', labels: {}, value: 1 },
    ]);
  });
});
