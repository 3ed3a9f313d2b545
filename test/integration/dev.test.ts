/**
 * `kylix dev` and `kylix server` as processes: apply on start, re-apply on file change, survive
 * kill -9, and (server) demand the admin token.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.js';
import { functionManifest, writeProject } from '../helpers/platform.js';
import { tempDir } from '../helpers/temp-dir.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

interface Started {
  child: ChildProcess;
  gateway: string;
  api: string;
  output: () => string;
}

/** Starts `kylix <args>` and resolves once it printed both addresses (and, for dev, what it serves). */
function startKylix(args: string[], until: RegExp): Promise<Started> {
  const child = spawn(process.execPath, [BIN, ...args, '--port', '0', '--api-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const gateway = /gateway\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
      const api = /control API\s+(http:\/\/[^\s"]+)/.exec(out)?.[1];
      if (gateway && api && until.test(out)) resolve({ child, gateway, api, output: () => out });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`kylix exited (${code}) before it was ready:\n${out}`)));
  });
}

describe('kylix dev', () => {
  it('applies the folder, runs edited code on the next request, and survives kill -9', async () => {
    const app = writeProject({
      'kylix.yaml': functionManifest('live', './live.ts', ['/live']),
      'live.ts': "export default { fetch() { return new Response('first'); } };",
    });
    const dataDir = tempDir('dev');
    const dev = await startKylix(['dev', app, '--data-dir', dataDir], /Watching/);
    assert.match(dev.output(), /function\/live ready: revision 1/);
    assert.equal(await (await fetch(`${dev.gateway}/live`)).text(), 'first');

    // A log the user keeps in the project (`kylix dev > dev.log`) is not code: no re-apply.
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(app, 'dev.log'), `line ${i}\n`, { flag: 'a' });
      await new Promise((r) => setTimeout(r, 60));
    }
    await new Promise((r) => setTimeout(r, 400));
    assert.doesNotMatch(dev.output(), /Changed:/);

    writeFileSync(join(app, 'live.ts'), "export default { fetch() { return new Response('second'); } };");
    await eventually(async () => (await (await fetch(`${dev.gateway}/live`)).text()) === 'second');

    dev.child.kill('SIGKILL');
    await new Promise((r) => dev.child.once('exit', r));
    const again = await startKylix(['dev', '--data-dir', dataDir], /control API/);
    await eventually(
      async () => (await fetch(`${again.gateway}/live`).catch(() => undefined))?.status === 200,
    );
    assert.equal(await (await fetch(`${again.gateway}/live`)).text(), 'second');
    again.child.kill('SIGTERM');
  });
});

describe('shutdown and crashes', () => {
  it('drains in-flight requests on SIGTERM and stops accepting new ones', async () => {
    const app = writeProject({
      'kylix.yaml': functionManifest('slow', './slow.ts', ['/slow']),
      'slow.ts':
        "export default { async fetch() { console.log('started'); await new Promise((r) => setTimeout(r, 700)); return new Response('finished'); } };",
    });
    const dataDir = tempDir('drain');
    const dev = await startKylix(['dev', app, '--data-dir', dataDir, '--no-watch'], /Serving:/);
    const inFlight = fetch(`${dev.gateway}/slow`);
    await eventually(async () =>
      (
        await (await fetch(`${dev.api}/apis/kylix.dev/v1/namespaces/default/functions/slow/log`)).text()
      ).includes('started'),
    );
    const exited = new Promise<number | null>((r) => dev.child.once('exit', (code) => r(code)));
    dev.child.kill('SIGTERM');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'finished');
    assert.equal(await exited, 0);
    await assert.rejects(fetch(`${dev.gateway}/slow`));
  });

  it('serves either the old or the new revision after kill -9 during a deploy, never a mix or nothing', async () => {
    const app = writeProject({
      'kylix.yaml': functionManifest('flip', './flip.ts', ['/flip']),
      'flip.ts': "export default { fetch() { return new Response('old'); } };",
    });
    const dataDir = tempDir('flip');
    const dev = await startKylix(['dev', app, '--data-dir', dataDir], /Watching/);
    // The watcher starts the deploy; kill the node while it bundles, applies or starts the revision.
    writeFileSync(join(app, 'flip.ts'), "export default { fetch() { return new Response('new'); } };");
    await eventually(async () => /Changed:/.test(dev.output()), 5000);
    dev.child.kill('SIGKILL');
    await new Promise((r) => dev.child.once('exit', r));
    const again = await startKylix(['dev', '--data-dir', dataDir], /control API/);
    const bodies = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${again.gateway}/flip`);
      assert.equal(res.status, 200);
      bodies.add(await res.text());
    }
    assert.equal(bodies.size, 1, `a mix of revisions: ${[...bodies].join(', ')}`);
    assert.ok(bodies.has('old') || bodies.has('new'));
    again.child.kill('SIGTERM');
  });
});

describe('kylix server', () => {
  it('creates an admin token (mode 0600) on first start and requires it', async () => {
    const dataDir = tempDir('server');
    const server = await startKylix(
      ['server', '--insecure-sandbox', '--no-tls', '--host', '127.0.0.1', '--data-dir', dataDir],
      /control API/,
    );
    const token = /export KYLIX_TOKEN=([\w-]+)/.exec(server.output())?.[1];
    assert.ok(token, 'the token is shown on first start');
    assert.equal(statSync(join(dataDir, 'admin-token')).mode & 0o777, 0o600);
    const list = `${server.api}/apis/kylix.dev/v1/namespaces/default/functions`;
    assert.equal((await fetch(list)).status, 401);
    assert.equal((await fetch(list, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    const second = await startKylix(
      ['server', '--insecure-sandbox', '--no-tls', '--host', '127.0.0.1', '--data-dir', dataDir],
      /control API/,
    );
    assert.doesNotMatch(second.output(), /Admin token/, 'the token is shown only once');
    second.child.kill('SIGTERM');
  });
});
