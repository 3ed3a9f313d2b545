/**
 * The dev loop, as a user meets it: `kylix dev` with no folder in a project, its terminal showing
 * console output and exceptions mapped to the user's source, the CLI finding it with no flags, a
 * module that fails at import, and the CLI's checks and conveniences (trigger, sql from a pipe,
 * bucket cp to stdout and rm, traffic, types, all-or-nothing apply) against a real node.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.js';
import { functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { tempDir } from '../helpers/temp-dir.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `kylix` in `cwd` with `env` added, feeding `input` on stdin. */
function kylix(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: opts.cwd,
        env: { ...process.env, KYLIX_CONFIG: '/nonexistent', KYLIX_SERVER: '', ...opts.env },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(opts.input ?? '');
  });
}

const SOURCE = `interface Greeting {
  text: string;
}
function fail(): never {
  throw new Error('kaboom in the handler');
}
export default {
  async fetch(request: Request): Promise<Response> {
    const g: Greeting = { text: 'hello from the function' };
    console.log(g.text);
    if (new URL(request.url).pathname === '/boom') fail();
    return new Response(g.text);
  },
};
`;

const BROKEN = `const config = { strict: true };
if (config.strict) throw new TypeError('broken at import');
export default { fetch: () => new Response('never') };
`;

describe('kylix dev, run from a project folder with no arguments', () => {
  let dev: ChildProcess;
  let out = '';
  let app: string;
  let runtime: string;
  let gateway = '';
  before(async () => {
    runtime = tempDir('xdg');
    app = writeProject({
      'kylix.yaml': `${functionManifest('app', './src/index.ts', ['/hello', '/boom'])}
---
apiVersion: kylix.dev/v1
kind: Function
metadata:
  name: hosted
spec:
  source: ./src/index.ts
  routes:
    - path: /h
      host: app.localhost
---
${functionManifest('cron', './src/cron.ts', ['/__scheduled'], '  triggers:\n    schedule: { cron: "0 0 1 1 *" }')}
`,
      'src/index.ts': SOURCE,
      'src/cron.ts':
        "export default { fetch: () => new Response('fetch'), async scheduled(event) { console.log('tick', event.cron); } };",
    });
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: runtime, KYLIX_LOG_FORMAT: 'text' };
    delete env.KYLIX_DATA_DIR;
    dev = spawn(process.execPath, [BIN, 'dev', '--port', '0', '--api-port', '0'], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(dev);
    const onData = (c: Buffer) => {
      out += c.toString();
    };
    dev.stdout?.on('data', onData);
    dev.stderr?.on('data', onData);
    await eventually(() => /Watching \. for changes/.test(out), 60_000, 50);
    gateway = /gateway\s+(http:\/\/\S+)/.exec(out)?.[1] ?? '';
  });
  after(() => dev.kill('SIGTERM'));

  it('applies the current folder, keeps .kylix out of git and prints host routes with their port', () => {
    assert.match(out, /Applying \./);
    assert.match(out, /function\/app ready: revision 1/);
    assert.equal(
      readFileSync(join(app, '.kylix', '.gitignore'), 'utf8')
        .trim()
        .split('\n')
        .at(-1),
      '*',
    );
    const port = new URL(gateway).port;
    assert.ok(out.includes(`http://app.localhost:${port}/h`), out);
  });

  it("runs scheduled() on wrangler dev's test route, GET /__scheduled?cron=", async () => {
    const res = await fetch(`${gateway}/__scheduled?cron=*/5+*+*+*+*`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Ran scheduled event\n');
    await eventually(() => /\[cron\] tick \*\/5 \* \* \* \*/.test(out), 10_000);
  });

  it("shows the function's console output and exceptions in the terminal, at the user's source line", async () => {
    assert.equal(await (await fetch(`${gateway}/hello`)).text(), 'hello from the function');
    assert.equal((await fetch(`${gateway}/boom`)).status, 502);
    await eventually(() => /kaboom in the handler/.test(out) && /src\/index\.ts:5:9/.test(out), 10_000);
    assert.match(out, /\[app\] hello from the function/);
    assert.match(out, /at fail \(src\/index\.ts:5:9\)/);
    assert.match(out, /src\/index\.ts:11:52/);
    // Never the bundle's file, nor Kylix's own frames.
    const exception = out.slice(out.indexOf('kaboom in the handler'));
    assert.doesNotMatch(exception.slice(0, 600), /\.mjs|dist\/sandbox|node:internal/);
  });

  it('the CLI finds the dev server with no flags, from the project and from elsewhere', async () => {
    const here = await kylix(['get', 'functions'], { cwd: app, env: { XDG_RUNTIME_DIR: runtime } });
    assert.equal(here.code, 0, here.stderr);
    assert.match(here.stdout, /^app\s+1\s/m);
    const elsewhere = await kylix(['get', 'functions'], {
      cwd: tempDir('elsewhere'),
      env: { XDG_RUNTIME_DIR: runtime },
    });
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    assert.match(elsewhere.stdout, /^app\s+1\s/m);
  });

  it('kylix logs shows the mapped stack trace', async () => {
    const logs = await kylix(['logs', 'app'], { cwd: app, env: { XDG_RUNTIME_DIR: runtime } });
    assert.match(logs.stdout, /kaboom in the handler/);
    assert.match(logs.stdout, /at fail \(src\/index\.ts:5:9\)/);
    assert.doesNotMatch(logs.stdout, /[a-f0-9]{64}\.mjs/);
  });

  it('a module that fails at import: apply exits non-zero saying where, and its route says it failed to start', async () => {
    const broken = writeProject({
      'kylix.yaml': functionManifest('broken', './src/broken.ts', ['/broken']),
      'src/broken.ts': BROKEN,
    });
    const applied = await kylix(['apply', '-f', broken], { env: { XDG_RUNTIME_DIR: runtime }, cwd: app });
    assert.notEqual(applied.code, 0);
    assert.match(
      applied.stdout,
      /function\/broken NOT ready: Revision 1 failed to start: .*TypeError: broken at import \(at src\/broken\.ts:2:26\)/,
    );
    const res = await fetch(`${gateway}/broken`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'ERR_FUNCTION_NOT_STARTED');
    assert.match(body.error.message, /broken failed to start/);
    await eventually(() =>
      /\[broken\] Uncaught exception while loading the module: TypeError: broken at import/.test(out),
    );
    assert.match(out, /src\/broken\.ts:2:26/);
  });

  it('stops announcing itself when it stops', async () => {
    const file = join(app, '.kylix', 'dev.json');
    assert.ok(existsSync(file));
    dev.kill('SIGTERM');
    await new Promise((r) => dev.once('exit', r));
    assert.equal(existsSync(file), false);
  });
});

describe('the CLI against a node: checks and conveniences', () => {
  let node: TestNode;
  const cli = (args: string[], input?: string) =>
    kylix(['--server', node.platform.apiUrl, ...args], input === undefined ? {} : { input });
  before(async () => {
    node = await startNode();
  });
  after(() => node.destroy());

  it('a resource with an all-optional spec applies without a spec: line; env numbers must be strings', async () => {
    const dir = writeProject({
      'kylix.yaml': 'apiVersion: kylix.dev/v1\nkind: Bucket\nmetadata:\n  name: files\n',
    });
    const ok = await cli(['apply', '-f', dir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /bucket\/files created/);
    const bad = writeProject({
      'kylix.yaml': functionManifest('envy', './e.ts', ['/envy'], '  env:\n    PORT: 8080\n    DEBUG: true'),
      'e.ts': 'export default { fetch: () => new Response("x") };',
    });
    const refused = await cli(['apply', '-f', bad]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /spec\.env\.PORT: must be a string: quote it \("8080"\)/);
    assert.match(refused.stderr, /spec\.env\.DEBUG: must be a string: quote it \("true"\)/);
  });

  it('an apply the server refuses applies nothing, not even the documents before it', async () => {
    // A route another namespace owns: admission refuses that Function; the Queue before it must not be made either.
    const first = writeProject({
      'kylix.yaml': functionManifest('owner', './o.ts', ['/owned/*']),
      'o.ts': 'export default { fetch: () => new Response("owner") };',
    });
    const made = await kylix(['--server', node.platform.apiUrl, '-n', 'team-a', 'apply', '-f', first]);
    assert.equal(made.code, 0, made.stderr);
    const both = writeProject({
      'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Queue\nmetadata:\n  name: jobs\n---\n${functionManifest('thief', './t.ts', ['/owned/x'])}`,
      't.ts': 'export default { fetch: () => new Response("thief") };',
    });
    const refused = await cli(['apply', '-f', both]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ERR_ROUTE_CONFLICT/);
    assert.match(refused.stderr, /Nothing was applied/);
    const queues = await cli(['get', 'queues']);
    assert.doesNotMatch(queues.stdout, /jobs/);
  });

  it('kylix trigger runs scheduled() and queue() by hand and says what they did', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest(
        'worker',
        './w.ts',
        ['/w'],
        '  triggers:\n    schedule: { cron: "0 0 1 1 *" }',
      ),
      'w.ts': `export default {
  fetch: () => new Response('w'),
  async scheduled(event) { console.log('tick', event.cron); },
  async queue(batch) {
    for (const m of batch.messages) {
      console.log('got', JSON.stringify(m.body));
      if (m.body.retry) m.retry(); else m.ack();
    }
  },
};`,
    });
    assert.equal((await cli(['apply', '-f', dir])).code, 0);
    const tick = await cli(['trigger', 'scheduled', 'worker']);
    assert.equal(tick.code, 0, tick.stderr);
    assert.match(tick.stdout, /scheduled\(\) of worker ran/);
    const batch = await cli(['trigger', 'queue', 'worker', '-m', '{"n":1}', '-m', '{"retry":true}']);
    assert.equal(batch.code, 0, batch.stderr);
    assert.match(batch.stdout, /queue\(\) of worker ran: 1 acked, 1 retried/);
    const logs = await cli(['logs', 'worker']);
    assert.match(logs.stdout, /tick 0 0 1 1 \*/);
    assert.match(logs.stdout, /got \{"n":1\}/);
  });

  it('kylix traffic refuses a revision that does not exist', async () => {
    const run = await cli(['traffic', 'worker', '1=50', '7=50']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /worker has no revision 7 \(it has 1\)/);
  });

  it('kylix sql reads piped statements and understands \\dt, \\d TABLE and \\q', async () => {
    const dir = writeProject({
      'kylix.yaml': 'apiVersion: kylix.dev/v1\nkind: Database\nmetadata:\n  name: notes\n',
    });
    assert.equal((await cli(['apply', '-f', dir])).code, 0);
    const script = [
      "CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL DEFAULT 'a;b');",
      "INSERT INTO note (body) VALUES ('x; y'), ($$z$$);",
      'SELECT count(*) AS n FROM note;',
      '\\dt',
      '\\d note',
      '\\q',
      'SELECT 1/0;',
    ].join('\n');
    const run = await cli(['sql', 'notes'], script);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /OK, 2 rows/);
    assert.match(run.stdout, /^n\s*\n2\s*$/m);
    assert.match(run.stdout, /public\s+note\s+base table/);
    assert.match(run.stdout, /Table "note"/);
    assert.match(run.stdout, /body\s+text\s+not null/);
    // \q ended the session before the division by zero.
    assert.doesNotMatch(run.stderr, /division/);
    const failing = await cli(['sql', 'notes'], 'SELECT 1/0;\nSELECT 2;\n');
    assert.equal(failing.code, 1);
    assert.match(failing.stderr, /division by zero/);
  });

  it('kylix bucket cp to "-" writes the object to stdout, and rm deletes it', async () => {
    const file = join(tempDir('obj'), 'report.json');
    writeFileSync(file, '{"total": 42}');
    assert.equal((await cli(['bucket', 'cp', file, 'bucket:files/r.json'])).code, 0);
    const cat = await cli(['bucket', 'cp', 'bucket:files/r.json', '-']);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, '{"total": 42}');
    const rm = await cli(['bucket', 'rm', 'bucket:files/r.json']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /deleted r\.json from files/);
    const again = await cli(['bucket', 'rm', 'bucket:files/r.json']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not found/);
  });

  it('queue.sendBatch over 100 messages names the Workers limit', async () => {
    const dir = writeProject({
      'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Queue\nmetadata:\n  name: many\n---\n${functionManifest('sender', './s.ts', ['/send'], '  bindings:\n    Q: { queue: many }')}`,
      's.ts': `export default { async fetch(req, env) {
  try { await env.Q.sendBatch(Array.from({ length: 101 }, (_, i) => ({ body: i }))); return new Response('sent'); }
  catch (e) { return new Response(e.message, { status: 400 }); }
} };`,
    });
    assert.equal((await cli(['apply', '-f', dir])).code, 0);
    const res = await fetch(node.url('/send'));
    assert.equal(res.status, 400);
    assert.match(await res.text(), /at most 100 \(the Workers Queues limit\)/);
  });

  it('kylix types writes the Env interface of a function from its manifest', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest(
        'typed',
        './t.ts',
        ['/t'],
        '  env:\n    GREETING: hi\n  bindings:\n    DB: { database: notes }\n    FILES: { bucket: files }\n  assets:\n    directory: ./public\n    binding: ASSETS',
      ),
    });
    const run = await cli(['types', dir]);
    assert.equal(run.code, 0, run.stderr);
    const text = readFileSync(join(dir, 'kylix-env.d.ts'), 'utf8');
    assert.match(text, /interface Env \{\n {2}GREETING: string;/);
    assert.match(text, /DB: Kylix\.Database;/);
    assert.match(text, /FILES: Kylix\.Bucket;/);
    assert.match(text, /ASSETS: Kylix\.Assets;/);
    assert.match(text, /declare namespace Kylix/);
  });
});
