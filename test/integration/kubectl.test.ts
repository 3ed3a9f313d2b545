/**
 * The real kubectl (/usr/bin/kubectl) against Kylix's own control API: apply, create and edit
 * with kubectl's default validation (it reads the OpenAPI documents and lets the server validate),
 * get with the same columns as `kylix get` (Table responses), explain, the `kylix` category, -w,
 * describe and delete on an embedded node; and against `kylix server` over HTTPS (its generated
 * CA) with the token of `kylix kubeconfig`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getCommand } from '../../src/cli/commands/get.js';
import { generateTlsPair } from '../../src/server/tls.js';
import { eventually } from '../helpers/eventually.js';
import { KUBECTL, kubectl } from '../helpers/kube-apiserver.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { tempDir } from '../helpers/temp-dir.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));
const skip = existsSync(KUBECTL) ? false : `kubectl is not at ${KUBECTL}; install kubectl or set KUBECTL`;
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A kubeconfig for a plain-HTTP, open API (kylix dev on loopback). */
function openKubeconfig(server: string): string {
  const path = join(tempDir('kubeconfig'), 'config');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: k, cluster: {server: "${server}"}}]`,
      'users: [{name: u, user: {}}]',
      'contexts: [{name: k, context: {cluster: k, user: u, namespace: default}}]',
      'current-context: k',
    ].join('\n'),
  );
  return path;
}

/** Cells of a printed table, whitespace-separated, without the AGE-like columns that tick. */
const rowsOf = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));

describe('kubectl against an embedded node', { skip }, () => {
  let node: TestNode;
  let kc: string;
  let app: string;
  before(async () => {
    node = await startNode();
    kc = openKubeconfig(node.platform.apiUrl);
    app = writeProject({
      'kylix.yaml': functionManifest('hello', './hello.ts', ['/hello']),
      'hello.ts': "export default { fetch() { return new Response('hi'); } };",
    });
    await apply(node, app);
  });
  after(() => node?.destroy());

  it('get shows the columns of kylix get (a Table response), -o wide too', async () => {
    for (const wide of [false, true]) {
      const args = ['get', 'functions', ...(wide ? ['-o', 'wide'] : [])];
      const k = await kubectl(kc, args);
      assert.equal(k.code, 0, k.stderr);
      const ours = await getCommand(node.client, 'functions', undefined, wide ? { output: 'wide' } : {});
      const [kh, ...kr] = rowsOf(k.stdout);
      const [oh, ...or] = rowsOf(ours);
      assert.deepEqual(kh, oh);
      assert.deepEqual(kh?.slice(0, 5), ['NAME', 'REVISION', 'ROUTES', 'READY', 'AGE']);
      // AGE may tick between the two calls; every other cell is the same.
      const age = kh!.indexOf('AGE');
      const drop = (r: string[]) => r.filter((_, i) => i !== age);
      assert.deepEqual(kr.map(drop), or.map(drop));
      assert.deepEqual(drop(kr[0]!).slice(0, 4), ['hello', '1', '/hello', 'True']);
    }
  });

  it('apply and create validate on the server (no --validate=false), then apply again patches', async () => {
    const manifest = (path: string) =>
      `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: applied\nspec:\n  source: ./x.ts\n  routes:\n    - path: ${path}\n`;
    const first = await kubectl(kc, ['apply', '-f', '-'], { input: manifest('/one') });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /function.kylix.dev\/applied created/);
    const second = await kubectl(kc, ['apply', '-f', '-'], { input: manifest('/two') });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /configured/);
    const stored = await node.client.get('functions', 'applied');
    assert.deepEqual(
      (stored.spec as { routes: { path: string }[] }).routes.map((r) => r.path),
      ['/two'],
    );
    // An unknown field and a bad route are refused by the server, with the fields named.
    const bad = await kubectl(kc, ['create', '-f', '-'], {
      input: manifest('no-slash').replace('applied', 'bad').replace('  source:', '  sorce: x\n  source:'),
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /spec\.sorce/);
    assert.match(bad.stderr, /spec\.routes\[0\]\.path/);
    const created = await kubectl(kc, ['create', '-f', '-'], {
      input: manifest('/three').replace('applied', 'created'),
    });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /function.kylix.dev\/created created/);
  });

  it('edit changes an object through the editor', async () => {
    const edit = await kubectl(kc, ['edit', 'function', 'created'], {
      env: { KUBE_EDITOR: 'sed -i s#/three#/edited#', EDITOR: '' },
    });
    assert.equal(edit.code, 0, edit.stderr);
    assert.match(edit.stdout, /edited/);
    const stored = await node.client.get('functions', 'created');
    assert.equal((stored.spec as { routes: { path: string }[] }).routes[0]?.path, '/edited');
  });

  it('explain describes the fields of a kind', async () => {
    const k = await kubectl(kc, ['explain', 'functions.spec.limits']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /KIND:\s+Function/);
    for (const field of ['cpuMs', 'memoryMiB', 'timeoutMs'])
      assert.match(k.stdout, new RegExp(`${field}\\s+<integer>`));
    assert.match(k.stdout, /What one request may use\./);
    assert.match(k.stdout, /CPU time per request, in milliseconds\./);
    const top = await kubectl(kc, ['explain', 'fn.spec']);
    assert.match(top.stdout, /routes\s+<\[\]Object>/);
    // The code comes one of three ways, none required alone (the CRD's anyOf says one must be there).
    assert.match(top.stdout, /source\s+<string>\n/);
    assert.match(top.stdout, /code\s+<string>\n\s+The code inline/);
    assert.match(top.stdout, /bundle\s+<\w+>\n\s+The bundle: its content address/);
  });

  it("get kylix lists every kind in the category, with each kind's columns", async () => {
    const k = await kubectl(kc, ['get', 'kylix']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /^function\.kylix\.dev\/hello\s+1\s+\/hello\s+True/m);
    assert.match(k.stdout, /^revision\.kylix\.dev\/hello-1\s+hello\s+1\s+True/m);
    const all = await kubectl(kc, ['get', 'kylix', '-A']);
    assert.match(all.stdout, /^default\s+function\.kylix\.dev\/hello/m);
  });

  it('get -w prints rows as objects change; describe and delete work', async () => {
    const watcher = spawn(KUBECTL, ['--kubeconfig', kc, '--cache-dir', `${kc}.cache`, 'get', 'fn', '-w'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(watcher);
    let out = '';
    watcher.stdout.on('data', (d) => {
      out += d;
    });
    await eventually(() => /^hello\s+1\s+\/hello\s+True/m.test(out), 15_000);
    assert.match(out, /^NAME\s+REVISION\s+ROUTES\s+READY\s+AGE$/m);
    const made = await kubectl(kc, ['apply', '-f', '-'], {
      input: functionManifest('watched', './w.ts', ['/w']),
    });
    assert.equal(made.code, 0, made.stderr);
    await eventually(() => /^watched\s+<none>\s+\/w\s+/m.test(out), 15_000);
    watcher.kill('SIGTERM');

    const described = await kubectl(kc, ['describe', 'fn', 'hello']);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /^Name:\s+hello$/m);
    assert.match(described.stdout, /Path:\s+\/hello/);
    const deleted = await kubectl(kc, ['delete', 'fn', 'watched']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /function.kylix.dev "watched" deleted/);
    const gone = await kubectl(kc, ['get', 'fn', 'watched']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound|not found/i);
  });
});

/** Starts `kylix server` (TLS by default) and resolves with its API URL once it prints it. */
function startServer(
  dataDir: string,
  extra: string[] = [],
): Promise<{ api: string; output: () => string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'server',
      '--insecure-sandbox',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--api-port',
      '0',
      '--data-dir',
      dataDir,
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const api = /control API\s+(https?:\/\/[^\s"]+)/.exec(out)?.[1];
      if (api && /gateway\s+http/.test(out)) resolve({ api, output: () => out, child });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`kylix server exited (${code}):\n${out}`)));
  });
}

function kylixCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kubectl against kylix server over HTTPS, with kylix kubeconfig', { skip }, () => {
  it('serves TLS with a CA made on first start (printed once); kubectl with the token works, without it does not', async () => {
    const dataDir = tempDir('server');
    const server = await startServer(dataDir);
    assert.match(server.api, /^https:\/\//);
    assert.match(server.output(), /-----BEGIN CERTIFICATE-----/);
    const made = await kylixCli(['--server', server.api, 'kubeconfig', '--data-dir', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /certificate-authority-data: /);
    assert.match(made.stdout, /token: /);
    const kc = join(tempDir('kubeconfig'), 'config');
    writeFileSync(kc, made.stdout);
    const ok = await kubectl(kc, ['get', 'functions']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr + ok.stdout, /No resources found/);
    const created = await kubectl(kc, ['apply', '-f', '-'], {
      input: functionManifest('secure', './s.ts', ['/s']),
    });
    assert.equal(created.code, 0, created.stderr);
    const listed = await kubectl(kc, ['get', 'kylix']);
    assert.match(listed.stdout, /function\.kylix\.dev\/secure/);

    // The same server without the token: 401, which kubectl reports as Unauthorized.
    const anonymous = join(tempDir('kubeconfig'), 'config');
    writeFileSync(anonymous, made.stdout.replace(/token: .*/, 'token: wrong-token-0123456789abcdef'));
    const refused = await kubectl(anonymous, ['get', 'functions']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Unauthorized|must be logged in|401/i);

    // A view token (made by the kylix CLI, which trusts the CA through NODE_EXTRA_CA_CERTS): kubectl
    // reads discovery and OpenAPI with it, lists, and is refused a write.
    const ca = { NODE_EXTRA_CA_CERTS: join(dataDir, 'tls', 'ca.crt') };
    const adminToken = /token: (\S+)/.exec(made.stdout)?.[1] ?? '';
    const view = await kylixCli(
      [
        '--server',
        server.api,
        '--token',
        adminToken,
        'token',
        'create',
        '--role',
        'view',
        '-n',
        'default',
        '-o',
        'json',
      ],
      ca,
    );
    assert.equal(view.code, 0, view.stderr);
    const viewToken = (JSON.parse(view.stdout) as { status: { token: string } }).status.token;
    const viewConfig = await kylixCli([
      '--server',
      server.api,
      '--token',
      viewToken,
      'kubeconfig',
      '--data-dir',
      dataDir,
    ]);
    const viewer = join(tempDir('kubeconfig'), 'config');
    writeFileSync(viewer, viewConfig.stdout);
    const read = await kubectl(viewer, ['get', 'fn', 'secure']);
    assert.equal(read.code, 0, read.stderr);
    const write = await kubectl(viewer, ['delete', 'fn', 'secure']);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /Forbidden|forbidden/);

    // A restart keeps the pair and does not print the CA again.
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    const again = await startServer(dataDir);
    assert.doesNotMatch(again.output(), /BEGIN CERTIFICATE/);
    const remade = await kylixCli(['--server', again.api, 'kubeconfig', '--data-dir', dataDir]);
    const caOf = (text: string) => /certificate-authority-data: (\S+)/.exec(text)?.[1];
    assert.equal(caOf(remade.stdout), caOf(made.stdout));
    writeFileSync(kc, remade.stdout);
    const still = await kubectl(kc, ['get', 'fn', 'secure']);
    assert.equal(still.code, 0, still.stderr);
    again.child.kill('SIGTERM');
  });

  it('serves the certificate given with --tls-cert/--tls-key; kylix kubeconfig --ca-file pins its CA', async () => {
    const dir = tempDir('tls');
    const pair = generateTlsPair(['localhost', '127.0.0.1']);
    writeFileSync(join(dir, 'ca.crt'), pair.caCert);
    writeFileSync(join(dir, 'tls.crt'), pair.cert);
    writeFileSync(join(dir, 'tls.key'), pair.key);
    const dataDir = tempDir('server');
    const server = await startServer(dataDir, [
      '--tls-cert',
      join(dir, 'tls.crt'),
      '--tls-key',
      join(dir, 'tls.key'),
    ]);
    assert.match(server.api, /^https:\/\//);
    assert.doesNotMatch(server.output(), /BEGIN CERTIFICATE/, 'a given pair is not announced');
    const made = await kylixCli([
      '--server',
      server.api,
      'kubeconfig',
      '--data-dir',
      dataDir,
      '--ca-file',
      join(dir, 'ca.crt'),
    ]);
    assert.equal(made.code, 0, made.stderr);
    const kc = join(tempDir('kubeconfig'), 'config');
    writeFileSync(kc, made.stdout);
    const ok = await kubectl(kc, ['get', 'kylix']);
    assert.equal(ok.code, 0, ok.stderr);
    // Another CA does not verify it: kubectl refuses the server.
    const other = generateTlsPair(['localhost']);
    writeFileSync(
      kc,
      made.stdout.replace(
        /certificate-authority-data: \S+/,
        `certificate-authority-data: ${Buffer.from(other.caCert).toString('base64')}`,
      ),
    );
    const refused = await kubectl(kc, ['get', 'kylix']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /certificate/);
    server.child.kill('SIGTERM');
  });
});
