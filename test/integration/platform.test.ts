/**
 * The platform end to end, as a user meets it: manifests applied through the real API, requests
 * through the real gateway into real sandbox processes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KylixError } from '../../src/errors.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

type WatchEvent = { type: string; object: { metadata: { name: string } } };

/** The events of a watch response, one per JSON line, however the chunks fall. */
async function* watchEvents(res: Response): AsyncGenerator<WatchEvent> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) yield JSON.parse(line) as WatchEvent;
  }
}

const handler = (body: string) => `export default { fetch(req, env) { return new Response(${body}); } };\n`;

describe('platform', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('serves an applied function on its route, with a request id', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('greeter', './greeter.ts', ['/greet/:name']),
      'greeter.ts': handler("'hi ' + new URL(req.url).pathname"),
    });
    const { ok, applied } = await apply(node, dir);
    assert.ok(ok);
    assert.equal(applied[0]?.result, 'created');
    const res = await fetch(node.url('/greet/ada'));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hi /greet/ada');
    assert.match(res.headers.get('kylix-request-id') ?? '', /^[0-9a-f]+-[0-9a-z]+$/);
  });

  it('answers a new revision after an edit, and nothing changes on an identical re-apply', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('versioned', './v.ts', ['/versioned']),
      'v.ts': handler("'one'"),
    });
    await apply(node, dir);
    assert.equal(await (await fetch(node.url('/versioned'))).text(), 'one');
    writeFileSync(join(dir, 'v.ts'), handler("'two'"));
    const { applied } = await apply(node, dir);
    assert.equal(applied[0]?.result, 'configured');
    assert.equal(await (await fetch(node.url('/versioned'))).text(), 'two');
    const again = await apply(node, dir);
    assert.equal(again.applied[0]?.result, 'unchanged');
    const fn = await node.client.get('functions', 'versioned');
    assert.equal(fn.status?.latestReadyRevision, 2);
    assert.equal(fn.status?.observedGeneration, fn.metadata.generation);
    const revisions = await node.client.list('revisions', { selector: 'kylix.dev/function=versioned' });
    assert.deepEqual(revisions.map((r) => r.metadata.name).sort(), ['versioned-1', 'versioned-2']);
  });

  it('answers 404 with a JSON error once a function is deleted', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('doomed', './d.ts', ['/doomed']),
      'd.ts': handler("'alive'"),
    });
    await apply(node, dir);
    assert.equal((await fetch(node.url('/doomed'))).status, 200);
    await node.client.raw('DELETE', node.client.path('functions', 'doomed'));
    await eventually(async () => (await fetch(node.url('/doomed'))).status === 404);
    const body = (await (await fetch(node.url('/doomed'))).json()) as {
      error: { code: string; requestId: string };
    };
    assert.equal(body.error.code, 'ERR_NO_ROUTE');
    assert.ok(body.error.requestId);
  });

  it('maps a throwing function to 502 with a JSON error, logs the stack, and keeps neighbours serving', async () => {
    const dir = writeProject({
      'kylix.yaml': `${functionManifest('thrower', './t.ts', ['/throw'])}\n---\n${functionManifest('neighbour', './n.ts', ['/neighbour'])}`,
      't.ts': "export default { fetch() { throw new Error('kaboom from tenant'); } };",
      'n.ts': handler("'still here'"),
    });
    await apply(node, dir);
    const res = await fetch(node.url('/throw'));
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
    assert.equal(body.error.code, 'ERR_FUNCTION_THREW');
    assert.doesNotMatch(
      body.error.message,
      /kaboom/,
      'the tenant error text stays in the log, not the response',
    );
    assert.equal(body.error.requestId, res.headers.get('kylix-request-id'));
    assert.equal(await (await fetch(node.url('/neighbour'))).text(), 'still here');
    // The log line travels from the sandbox on its own channel and may land just after the response.
    await eventually(() =>
      node.platform.logs
        .tail('default', 'thrower')
        .some(
          (e) =>
            e.level === 'error' &&
            e.message.includes('kaboom from tenant') &&
            e.requestId === body.error.requestId,
        ),
    );
  });

  it('answers 502 when the instance dies mid-request, and starts a new one for the next', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('crasher', './c.ts', ['/crash', '/ok']),
      'c.ts':
        // Functions have no process.exit; an exception thrown from a timer is what kills an instance.
        "export default { fetch(req) { if (new URL(req.url).pathname === '/crash') { setTimeout(() => { throw new Error('die'); }); return new Promise(() => {}); } return new Response('ok'); } };",
    });
    await apply(node, dir);
    const res = await fetch(node.url('/crash'));
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_FUNCTION_CRASHED');
    assert.equal(await (await fetch(node.url('/ok'))).text(), 'ok');
  });

  it('answers 504 when a function exceeds its wall-time limit', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('sleeper', './s.ts', ['/sleep'], '  limits:\n    timeoutMs: 200'),
      's.ts': 'export default { fetch() { return new Promise(() => {}); } };',
    });
    await apply(node, dir);
    const res = await fetch(node.url('/sleep'));
    assert.equal(res.status, 504);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_TIMEOUT');
  });

  it('names the binding call a timed-out request was waiting on', async () => {
    // A backend that does not answer in time (here a slow statement) is named, not only the function.
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1\nkind: Database\nmetadata: { name: slowdb }\nspec: {}',
        '---',
        functionManifest(
          'waiter',
          './w.ts',
          ['/wait'],
          '  bindings:\n    DB: { database: slowdb }\n  limits:\n    timeoutMs: 1500',
        ),
      ].join('\n'),
      'w.ts':
        "export default { async fetch(req, env) { await env.DB.query('SELECT pg_sleep(5)'); return new Response('done'); } };",
    });
    await apply(node, dir);
    const res = await fetch(node.url('/wait'));
    assert.equal(res.status, 504);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'ERR_TIMEOUT');
    assert.match(
      body.error.message,
      /waiter did not answer within 1500 ms \(spec\.limits\.timeoutMs\)\. Its instance was waiting on a binding call, env\.DB\.query\(\) \(running for 1\.\d s\)/,
    );
  });

  it("tells the requests sharing an instance stopped for another's timeout why they failed", async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('sharer', './s.ts', ['/hang', '/slow'], '  limits:\n    timeoutMs: 800'),
      's.ts':
        "export default { fetch(req) { if (new URL(req.url).pathname === '/hang') return new Promise(() => {}); return new Promise((r) => setTimeout(() => r(new Response('late')), 700)); } };",
    });
    await apply(node, dir);
    const hang = fetch(node.url('/hang'));
    await new Promise((r) => setTimeout(r, 300));
    const slow = await fetch(node.url('/slow'));
    assert.equal((await hang).status, 504);
    assert.equal(slow.status, 502);
    const body = (await slow.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'ERR_FUNCTION_CRASHED');
    assert.match(body.error.message, /another request to its instance did not answer within 800 ms/);
  });

  it('refuses a request body over the limit with 413 before the function runs', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('small', './s.ts', ['/small'], '  limits:\n    maxRequestBytes: 1024'),
      's.ts': "export default { fetch() { console.log('ran'); return new Response('ran'); } };",
    });
    await apply(node, dir);
    const res = await fetch(node.url('/small'), { method: 'POST', body: 'x'.repeat(4096) });
    assert.equal(res.status, 413);
    assert.equal(node.platform.logs.tail('default', 'small').length, 0);
  });

  it('answers a request whose Host header the URL parser refuses, without harming the instance', async () => {
    const { request } = await import('node:http');
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(node.url('/greet/odd'), { headers: { host: '1.2.3.999' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'hi /greet/odd');
  });

  it('refuses an over-long URL with 414 and over-large headers with 431, as JSON with a request id', async () => {
    const long = await fetch(node.url(`/greet/${'a'.repeat(17 * 1024)}`));
    assert.equal(long.status, 414);
    assert.equal(((await long.json()) as { error: { code: string } }).error.code, 'ERR_URL_TOO_LONG');
    const big = await fetch(node.url('/greet/x'), { headers: { 'x-big': 'b'.repeat(40 * 1024) } });
    assert.equal(big.status, 431);
    const body = (await big.json()) as { error: { code: string; requestId: string } };
    assert.equal(body.error.code, 'ERR_HEADERS_TOO_LARGE');
    assert.ok(body.error.requestId);
  });

  it('streams request and response bodies, passes env, runs waitUntil work after the response', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('streamer', './s.ts', ['/stream'], '  env:\n    SUFFIX: "!"'),
      's.ts': `export default {
        async fetch(req, env, ctx) {
          ctx.waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => console.log('after response')));
          const text = await req.text();
          let i = 0;
          const body = new ReadableStream({ pull(c) { if (i++ < 3) c.enqueue(new TextEncoder().encode(text + env.SUFFIX)); else c.close(); } });
          return new Response(body, { headers: { 'x-kind': 'stream' } });
        },
      };`,
    });
    await apply(node, dir);
    const res = await fetch(node.url('/stream'), { method: 'POST', body: 'ab' });
    assert.equal(res.headers.get('x-kind'), 'stream');
    assert.equal(await res.text(), 'ab!ab!ab!');
    await eventually(async () =>
      node.platform.logs.tail('default', 'streamer').some((e) => e.message === 'after response'),
    );
  });

  it('keeps a streamed request body whole for a function that awaits other work before reading it', async () => {
    // The body's first chunks arrive before the function asks for it; they were dropped, the
    // rest never got credit (504 / 408), and a binding fed the stream stored a truncated body.
    const dir = writeProject({
      'kylix.yaml': functionManifest('late-reader', './late.ts', ['/late']),
      'late.ts': `export default {
        async fetch(req) {
          await new Promise((r) => setTimeout(r, 50));
          const bytes = new Uint8Array(await req.arrayBuffer());
          let sum = 0;
          for (const b of bytes) sum = (sum + b) % 65521;
          return new Response(bytes.byteLength + ':' + sum);
        },
      };`,
    });
    await apply(node, dir);
    for (const size of [65_537, 200_000, 3_000_000]) {
      const body = new Uint8Array(size).map((_, i) => (i * 7) % 251);
      let sum = 0;
      for (const b of body) sum = (sum + b) % 65521;
      const res = await fetch(node.url('/late'), {
        method: 'POST',
        body,
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(res.status, 200, `${size} bytes`);
      assert.equal(await res.text(), `${size}:${sum}`);
    }
    // Ended before it is read, and read only then.
    const small = await fetch(node.url('/late'), { method: 'POST', body: new Uint8Array(100_000).fill(1) });
    assert.equal(await small.text(), '100000:34479');
  });

  it('records a client that went away mid-body as 499, not as the 200 nobody received', async () => {
    await fetch(node.url('/late'), { method: 'POST', body: 'warm' });
    const { connect } = await import('node:net');
    const url = new URL(node.url('/late'));
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((r) => socket.once('connect', r));
    socket.write(`POST /late HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 200000\r\n\r\n`);
    socket.write(Buffer.alloc(100_000, 1));
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await eventually(() =>
      node.platform.logs.tail('default', 'late-reader', 20).some((e) => / 499 /.test(String(e.message))),
    );
  });

  it('leaves the previous revision serving when a new one fails to start', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('fragile', './f.ts', ['/fragile']),
      'f.ts': handler("'v1'"),
    });
    await apply(node, dir);
    writeFileSync(join(dir, 'f.ts'), "throw new Error('broken at import');\nexport default {};");
    const { ok } = await apply(node, dir);
    assert.equal(ok, false);
    const fn = await node.client.get('functions', 'fragile');
    const ready = fn.status?.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'False');
    assert.match(ready?.message ?? '', /broken at import/);
    assert.equal(await (await fetch(node.url('/fragile'))).text(), 'v1');
  });

  it('reports a build error with file, line and message, and applies nothing', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('typo', './t.ts', ['/typo']),
      't.ts': 'export default {\n  fetch() { return new Response(1 +); }\n};',
    });
    await assert.rejects(apply(node, dir), (err: KylixError) => {
      assert.equal(err.code, 'ERR_BUILD_FAILED');
      assert.match(err.causes[0]?.field ?? '', /t\.ts:2:\d+$/);
      return true;
    });
    await assert.rejects(node.client.get('functions', 'typo'), (e: KylixError) => e.code === 'ERR_NOT_FOUND');
  });

  it('refuses a second function on a route another one serves', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('squatter', './s.ts', ['/greet/:who']),
      's.ts': handler("'mine'"),
    });
    await assert.rejects(apply(node, dir), (err: KylixError) => {
      assert.equal(err.code, 'ERR_ROUTE_CONFLICT');
      assert.match(err.causes[0]?.message ?? '', /greeter/);
      return true;
    });
  });

  it('rejects an invalid object through the API with a Status listing every field', async () => {
    const res = await fetch(`${node.platform.apiUrl}/apis/kylix.dev/v1/namespaces/default/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: { name: 'x' },
        spec: { source: 'a', routes: [{ path: 'nope' }], bogus: 1 },
      }),
    });
    assert.equal(res.status, 422);
    const status = (await res.json()) as {
      kind: string;
      reason: string;
      details: { causes: { field: string }[] };
    };
    assert.equal(status.kind, 'Status');
    assert.equal(status.reason, 'Invalid');
    assert.deepEqual(status.details.causes.map((c) => c.field).sort(), ['spec.bogus', 'spec.routes[0].path']);
  });

  it('answers 409 Conflict to a write with a stale resourceVersion', async () => {
    const base = `${node.platform.apiUrl}/apis/kylix.dev/v1/namespaces/default/keyvalues`;
    const created = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'kylix.dev/v1',
        kind: 'KeyValue',
        metadata: { name: 'sessions' },
        spec: {},
      }),
    });
    assert.equal(created.status, 201);
    // The resource controller writes its status once it is provisioned, which moves the
    // resourceVersion: the writes below start from the version after that, as a client that read
    // the object would.
    type Read = {
      metadata: { resourceVersion: string };
      status?: { conditions?: { type: string; status: string }[] };
    };
    let obj = (await created.json()) as Read;
    await eventually(async () => {
      obj = (await (await fetch(`${base}/sessions`)).json()) as Read;
      return !!obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    });
    const put = (spec: object, rv: string) =>
      fetch(`${base}/sessions`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'kylix.dev/v1',
          kind: 'KeyValue',
          metadata: { name: 'sessions', resourceVersion: rv },
          spec,
        }),
      });
    assert.equal((await put({ defaultTtlSeconds: 60 }, obj.metadata.resourceVersion)).status, 200);
    const stale = await put({ defaultTtlSeconds: 120 }, obj.metadata.resourceVersion);
    assert.equal(stale.status, 409);
    assert.equal(((await stale.json()) as { reason: string }).reason, 'Conflict');
    const dup = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'kylix.dev/v1',
        kind: 'KeyValue',
        metadata: { name: 'sessions' },
        spec: {},
      }),
    });
    assert.equal(((await dup.json()) as { reason: string }).reason, 'AlreadyExists');
  });

  it('never returns secret values, and keeps them sealed on disk', async () => {
    const canary = 'canary-7f3a9c-do-not-leak';
    const dir = writeProject({
      's.yaml': `apiVersion: kylix.dev/v1\nkind: Secret\nmetadata:\n  name: stripe\nspec:\n  stringData:\n    key: ${canary}\n`,
    });
    await apply(node, dir);
    const got = await node.client.get('secrets', 'stripe');
    assert.doesNotMatch(JSON.stringify(got), new RegExp(canary));
    assert.deepEqual(got.status?.keys, ['key']);
    assert.deepEqual(await node.platform.registry.secretValues('default', 'stripe'), { key: canary });
    const { readFileSync, readdirSync } = await import('node:fs');
    for (const f of readdirSync(join(node.dataDir, 'state')))
      assert.doesNotMatch(readFileSync(join(node.dataDir, 'state', f), 'utf8'), new RegExp(canary));
  });

  it('lists with a label selector and streams changes to a watch', async () => {
    const dir = writeProject({
      'b.yaml':
        'apiVersion: kylix.dev/v1\nkind: Bucket\nmetadata:\n  name: photos\n  labels: { team: media }\nspec: {}\n---\napiVersion: kylix.dev/v1\nkind: Bucket\nmetadata:\n  name: logs\nspec: {}\n',
    });
    await apply(node, dir);
    const list = await node.client.list('buckets', { selector: 'team=media' });
    assert.deepEqual(
      list.map((b) => b.metadata.name),
      ['photos'],
    );
    const listRes = await node.client.json<{ kind: string; metadata: { resourceVersion: string } }>(
      'GET',
      node.client.path('buckets'),
    );
    assert.equal(listRes.data.kind, 'BucketList');

    const controller = new AbortController();
    const res = await node.client.raw(
      'GET',
      `${node.client.path('buckets')}?watch=true&resourceVersion=${listRes.data.metadata.resourceVersion}`,
      { signal: controller.signal },
    );
    await node.client.raw('DELETE', node.client.path('buckets', 'logs'));
    // Controllers may still write status (MODIFIED) after the list; the watch
    // must deliver every change in order, ending with the deletion.
    const seen: string[] = [];
    for await (const event of watchEvents(res)) {
      seen.push(`${event.type} ${event.object.metadata.name}`);
      if (event.type === 'DELETED') break;
    }
    controller.abort();
    assert.equal(seen.at(-1), 'DELETED logs', `watch events: ${seen.join(', ')}`);
    assert.ok(
      seen.slice(0, -1).every((e) => e.startsWith('MODIFIED ')),
      `only status updates may precede the deletion: ${seen.join(', ')}`,
    );
  });

  it('calls a function through the API proxy without knowing its route', async () => {
    const res = await node.client.raw('POST', `${node.client.path('functions', 'greeter')}/proxy/greet/bob`, {
      body: '{}',
    });
    assert.equal(await res.text(), 'hi /greet/bob');
  });
});

describe('platform restarts', () => {
  it('serves every function again after a restart, without new revisions', async () => {
    let node = await startNode();
    const dir = writeProject({
      'kylix.yaml': functionManifest('durable', './d.ts', ['/durable']),
      'd.ts': handler("'persisted'"),
    });
    await apply(node, dir);
    await node.stop();
    node = await startNode({ dataDir: node.dataDir });
    try {
      assert.equal(await (await fetch(node.url('/durable'))).text(), 'persisted');
      assert.equal((await node.client.get('functions', 'durable')).status?.latestReadyRevision, 1);
    } finally {
      await node.destroy();
    }
  });
});

describe('API authentication', () => {
  it('requires the bearer token when one is configured', async () => {
    const node = await startNode({ token: 'sekrit-token' });
    try {
      const path = `${node.platform.apiUrl}/apis/kylix.dev/v1/namespaces/default/functions`;
      const anonymous = await fetch(path);
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { reason: string }).reason, 'Unauthorized');
      assert.equal((await fetch(path, { headers: { authorization: 'Bearer wrong-token-' } })).status, 401);
      assert.equal((await fetch(path, { headers: { authorization: 'Bearer sekrit-token' } })).status, 200);
      assert.equal((await fetch(`${node.platform.apiUrl}/healthz`)).status, 200);
    } finally {
      await node.destroy();
    }
  });
});
