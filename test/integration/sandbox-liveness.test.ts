/**
 * A sandbox process that stops answering (here: SIGSTOP, as a frozen cgroup or a hung process
 * would look) is ended within its liveness deadline: its requests in flight get 502 with the
 * reason instead of waiting for their wall-time limit, and the next request gets a new process.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { processTree } from '../../bench/lib/memory.js';

process.env.KYLIX_SANDBOX_LIVENESS_MS = '1000';
const { apply, functionManifest, startNode, writeProject } = await import('../helpers/platform.js');
type TestNode = Awaited<ReturnType<typeof startNode>>;

/** Pids of this process's descendants that run the sandbox host (inside bubblewrap or not). */
function sandboxHosts(): number[] {
  return processTree(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        .split('\0')
        .some((a) => a.endsWith('sandbox/host.js'));
    } catch {
      return false;
    }
  });
}

describe('sandbox liveness', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('ends a stopped sandbox process: its request gets 502 with the reason, the next one a new process', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('frozen', './f.ts', ['/slow', '/ok']),
      'f.ts':
        "export default { async fetch(req) { if (new URL(req.url).pathname === '/slow') await new Promise((r) => setTimeout(r, 1500)); return new Response('ok'); } };",
    });
    await apply(node, dir);
    assert.equal(await (await fetch(node.url('/ok'))).text(), 'ok');
    const frozen = sandboxHosts();
    assert.ok(frozen.length > 0, 'no sandbox process found');
    const slow = fetch(node.url('/slow'));
    await new Promise((r) => setTimeout(r, 300));
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    try {
      const res = await slow;
      const waited = Date.now() - started;
      assert.equal(res.status, 502);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'ERR_FUNCTION_CRASHED');
      assert.match(body.error.message, /no answer to a liveness check within 1000 ms/);
      // Well before the function's 30 s wall-time limit.
      assert.ok(waited < 5000, `answered after ${waited} ms`);
      const next = await fetch(node.url('/ok'));
      assert.equal(await next.text(), 'ok');
      assert.ok(
        sandboxHosts().some((pid) => !frozen.includes(pid)),
        'served by a new process',
      );
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {}
      }
    }
  });

  it('keeps a process whose answer waits behind a burst of its own logs', async () => {
    // 1,000 lines of 16 KB a second: more than the supervisor reads of a process's control messages
    // in a second, so the answer to a ping queues for longer than the deadline behind them.
    const dir = writeProject({
      'kylix.yaml': functionManifest(
        'chatty',
        './c.ts',
        ['/chatty'],
        '  limits:\n    cpuMs: 60000\n    timeoutMs: 60000\n    memoryMiB: 512',
      ),
      'c.ts': `const line = 'x'.repeat(16000);
export default { async fetch() {
  const end = Date.now() + 6000;
  while (Date.now() < end) {
    for (let i = 0; i < 10; i++) console.log(line);
    await new Promise((r) => setTimeout(r, 10));
  }
  return new Response('done');
} };`,
    });
    await apply(node, dir);
    const res = await fetch(node.url('/chatty'));
    const body = await res.text();
    assert.equal(res.status, 200, body);
    assert.equal(body, 'done');
  });

  it('keeps a process that answers, while its requests run and while the node is busy', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('steady', './s.ts', ['/steady']),
      's.ts':
        "export default { async fetch() { await new Promise((r) => setTimeout(r, 2500)); return new Response('done'); } };",
    });
    await apply(node, dir);
    const before = sandboxHosts();
    const pending = fetch(node.url('/steady'));
    await new Promise((r) => setTimeout(r, 200));
    // The node's own loop held for longer than the deadline: that is not the process's fault.
    const until = Date.now() + 1500;
    while (Date.now() < until);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'done');
    assert.deepEqual(
      sandboxHosts()
        .filter((pid) => before.includes(pid))
        .sort(),
      before.sort(),
      'a process was ended',
    );
  });
});
