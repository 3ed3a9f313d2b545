/**
 * `kylix apply` waits for a Function with the API's watch, not by polling: it returns as soon as
 * the Function is Ready, having made a couple of requests however long the start takes, and a
 * timeout names what it waited for.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyManifests, waitForReady } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import { functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

/** How long the function's module takes to load (top-level await), so the wait has something to wait for. */
const START_MS = 600;

/** A client that counts the requests it makes, by method and path. */
class CountingClient extends ApiClient {
  readonly requests: string[] = [];
  override raw(method: string, path: string, init?: Parameters<ApiClient['raw']>[2]): Promise<Response> {
    this.requests.push(`${method} ${path}`);
    return super.raw(method, path, init);
  }
}

describe('apply --wait', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('returns once the Function is Ready, with a watch instead of polling', async () => {
    const app = writeProject({
      'kylix.yaml': functionManifest('slow', './slow.ts', ['/slow']),
      'slow.ts': `await new Promise((r) => setTimeout(r, ${START_MS}));\nexport default { fetch() { return new Response('ready'); } };`,
    });
    const client = new CountingClient(node.client.config);
    const lines: string[] = [];
    const started = performance.now();
    const { ok } = await applyManifests(client, [app], { out: (l) => lines.push(l) });
    const ms = performance.now() - started;
    assert.ok(ok, lines.join('\n'));
    assert.match(lines.join('\n'), /^function\/slow ready: revision 1 \(\d+ ms\)$/m);
    const applyAt = client.requests.findIndex((r) => r.startsWith('PATCH '));
    const waiting = client.requests.slice(applyAt + 1);
    console.log(`# apply took ${Math.round(ms)} ms; requests while waiting: ${waiting.join(', ')}`);
    // One GET of the object, one watch: polling every 25 ms would have made about START_MS / 25.
    assert.ok(waiting.length <= 3, `requests while waiting: ${waiting.join(', ')}`);
    assert.ok(waiting.some((r) => r.includes('watch=true')));
    assert.ok(ms < START_MS + 5000, `apply took ${ms} ms`);
  });

  it('gives up at the timeout and says what it waited for', async () => {
    // Its module takes 3 s to load; the wait gives up after 0.2 s.
    const app = writeProject({
      'kylix.yaml': functionManifest('waiting', './w.ts', ['/waiting']),
      'w.ts': `await new Promise((r) => setTimeout(r, 3000));\nexport default { fetch() { return new Response('late'); } };`,
    });
    const lines: string[] = [];
    const { applied } = await applyManifests(node.client, [app], { wait: false, out: () => {} });
    const ok = await waitForReady(node.client, applied[0]!, 200, (l) => lines.push(l));
    assert.equal(ok, false);
    assert.match(
      lines.join('\n'),
      /function\/waiting did not become ready within 0\.2 s; see kylix describe function waiting/,
    );
  });
});
