/**
 * A backend that goes away while functions use it: their binding calls fail with the backend's
 * reason, the node's own log says so once, and says again when it is back (bindings/outages.ts).
 * Redis here is a private redis-server, so the shared one is never stopped.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadInstallation } from '../../src/config/installation.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const REDIS = '/usr/bin/redis-server';

describe('a backend outage in the node log', { skip: !existsSync(REDIS) && 'no redis-server binary' }, () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const startRedis = () =>
    spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
  let redis: ChildProcess;
  let node: TestNode;
  const lines: { message: string; level?: string }[] = [];
  before(async () => {
    redis = startRedis();
    await new Promise((r) => setTimeout(r, 300));
    node = await startNode({
      installation: loadInstallation(undefined, { KYLIX_REDIS_URL: `redis://127.0.0.1:${port}` }),
      log: (message, level) => lines.push({ message, level }),
    });
  });
  after(async () => {
    redis.kill('SIGKILL');
    await node.destroy();
  });

  it('is logged once when calls start failing, and when its health is back', async () => {
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1',
        'kind: KeyValue',
        'metadata: { name: cache }',
        'spec: {}',
        '---',
        functionManifest('reader', './r.ts', ['/read'], '  bindings:\n    KV: { keyValue: cache }'),
        '---',
        functionManifest('cacher', './c.ts', ['/cached']),
      ].join('\n'),
      // The Workers cache every function has, with no binding of its own: on the KeyValue backend.
      'c.ts':
        "export default { async fetch() { try { return new Response(String(await caches.default.match('https://x.test/a'))); } catch (e) { return new Response(e.code + ': ' + e.message, { status: 503 }); } } };",
      'r.ts':
        "export default { async fetch(req, env) { try { return new Response(String(await env.KV.get('k'))); } catch (e) { return new Response(e.code + ': ' + e.message, { status: 503 }); } } };",
    });
    const { ok } = await apply(node, dir);
    assert.ok(ok, 'applies');
    assert.equal(await (await fetch(node.url('/read'))).text(), 'null');
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(node.url('/read'));
      assert.equal(res.status, 503);
      assert.match(await res.text(), /^ERR_BACKEND_UNAVAILABLE: Redis at 127\.0\.0\.1:\d+ failed/);
    }
    const down = lines.filter((l) => /keyValue backend unavailable/.test(l.message));
    assert.equal(down.length, 1, lines.map((l) => l.message).join('\n'));
    assert.equal(down[0]?.level, 'warn');
    redis = startRedis();
    await eventually(
      () =>
        lines.some((l) =>
          /keyValue backend available again after [\d.]+ s; \d+ binding call/.test(l.message),
        ),
      20_000,
    );
    assert.equal(await (await fetch(node.url('/read'))).text(), 'null');
  });

  it('counts the Workers cache as its KeyValue backend', async () => {
    assert.equal(await (await fetch(node.url('/cached'))).text(), 'undefined');
    const before = lines.length;
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(node.url('/cached'));
      assert.equal(res.status, 503);
      assert.match(await res.text(), /^ERR_BACKEND_UNAVAILABLE/);
    }
    const logged = () => lines.slice(before).map((l) => l.message);
    assert.equal(
      logged().filter((m) => /keyValue backend unavailable/.test(m)).length,
      1,
      logged().join('\n'),
    );
    redis = startRedis();
    await eventually(() => logged().some((m) => /keyValue backend available again/.test(m)), 20_000);
    assert.equal(await (await fetch(node.url('/cached'))).text(), 'undefined');
  });
});
