/**
 * The `kylix` command against a live node, run as a user runs it (the built bin/kylix.js).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.js';
import { functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kylix(node: TestNode, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, '--server', node.platform.apiUrl, ...args],
      { env: { ...process.env, KYLIX_CONFIG: '/nonexistent' } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('kylix CLI', () => {
  let node: TestNode;
  let app: string;
  before(async () => {
    node = await startNode();
    app = writeProject({
      'kylix.yaml': `${functionManifest('hello', './hello.ts', ['/hello'])}\n---\n${functionManifest('other', './hello.ts', ['/other'])}`,
      'hello.ts':
        "export default { async fetch(req) { const body = await req.text(); console.log('got', body || 'nothing'); return new Response('hello ' + (body || new URL(req.url).pathname)); } };",
    });
  });
  after(async () => {
    await node.destroy();
  });

  it('apply creates, reports readiness, and is idempotent', async () => {
    const first = await kylix(node, 'apply', '-f', app);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^function\/hello created$/m);
    assert.match(first.stdout, /^function\/hello ready: revision 1 \(\d+ ms\)$/m);
    const second = await kylix(node, 'apply', '-f', app);
    assert.match(second.stdout, /^function\/hello unchanged$/m);
  });

  it('get functions prints a kubectl-style table, and -o json the objects', async () => {
    const table = await kylix(node, 'get', 'functions');
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+REVISION\s+ROUTES\s+READY\s+AGE$/);
    assert.match(table.stdout, /^hello\s+1\s+\/hello\s+True\s+\d+s$/m);
    const json = JSON.parse((await kylix(node, 'get', 'fn', 'hello', '-o', 'json')).stdout) as {
      kind: string;
      status: { latestReadyRevision: number };
    };
    assert.equal(json.kind, 'Function');
    assert.equal(json.status.latestReadyRevision, 1);
  });

  it('describe shows spec, conditions, revisions and events', async () => {
    const { stdout, code } = await kylix(node, 'describe', 'function', 'hello');
    assert.equal(code, 0);
    for (const heading of ['Spec:', 'Conditions:', 'Revisions:', 'Events:'])
      assert.match(stdout, new RegExp(`^${heading}`, 'm'));
    assert.match(stdout, /Ready\s+True\s+RevisionReady/);
    assert.match(stdout, /RevisionCreated/);
  });

  it('invoke calls the function without its route; logs shows its console output', async () => {
    const run = await kylix(node, 'invoke', 'hello', '--path', '/anything', '--data', '{"x":1}');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'hello {"x":1}\n');
    const logs = await kylix(node, 'logs', 'hello');
    assert.match(logs.stdout, /LOG\s+\[rev 1 [0-9a-f]+-[0-9a-z]+\] got \{"x":1\}/);
  });

  it('logs -f streams new lines as they are written', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [BIN, '--server', node.platform.apiUrl, 'logs', 'other', '-f'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      const seen = new Promise<void>((resolve) => {
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('got streamed-line')) resolve();
        });
      });
      // Keep calling until the follower has attached and printed the line.
      const poke = setInterval(
        () => void fetch(node.url('/other'), { method: 'POST', body: 'streamed-line' }),
        100,
      );
      await seen.finally(() => clearInterval(poke));
    } finally {
      child.kill();
    }
  });

  it('reports every manifest error with its path and exits non-zero', async () => {
    const bad = writeProject({
      'bad.yaml':
        'apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: bad\nspec:\n  source: ./x.ts\n  routes:\n    - path: nope\n  limitz: {}\n',
    });
    const run = await kylix(node, 'apply', '-f', bad);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ERR_MANIFEST_INVALID/);
    assert.match(run.stderr, /spec\.routes\[0\]\.path: must start with "\/"/);
    assert.match(run.stderr, /spec\.limitz: unknown field/);
  });

  it('explains an unreachable server and exits non-zero', async () => {
    const run = await new Promise<Run>((resolve) =>
      execFile(
        process.execPath,
        [BIN, '--server', 'http://127.0.0.1:9', 'get', 'functions'],
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ERR_API_UNREACHABLE: Cannot reach the Kylix API at http:\/\/127\.0\.0\.1:9/);
  });

  it('delete -f removes what the manifests name; their routes answer 404', async () => {
    const run = await kylix(node, 'delete', '-f', app);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^function\/hello deleted$/m);
    await eventually(async () => (await fetch(node.url('/hello'))).status === 404);
    const missing = await kylix(node, 'get', 'function', 'hello');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ERR_NOT_FOUND/);
  });
});
