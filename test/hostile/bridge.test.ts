/**
 * The bridge between the gateway and the instances, attacked from both ends: clients that try to
 * smuggle a second request or an internal signal through the gateway (every request is framed by
 * the gateway), functions that keep burning CPU after they answered (every cycle counts), and a
 * sandbox process that lies on its channel (the channel, not what it says, decides whom a call is
 * for; anything malformed ends it). Through the real platform, with bubblewrap on (where it is
 * installed) and off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serialize } from 'node:v8';
import { InstanceChannel, type StreamSink } from '../../src/runtime/instance-channel.js';
import { F, frame, frameHeader, headFrame } from '../../src/sandbox/channel.js';
import type { BindingCall } from '../../src/sandbox/protocol.js';
import { decodePayload, encodeFrame } from '../../src/sandbox/rpc-codec.js';
import { rawHttp } from '../helpers/raw-http.js';
import { socketPair } from '../helpers/socket-pair.js';
import { type Arena, arena } from './harness.js';

const ECHO = `
let seen = 0;
export default {
  async fetch(request) {
    seen++;
    const body = request.method === 'GET' || request.method === 'HEAD' ? '' : await request.text();
    return Response.json({ seen, method: request.method, url: request.url, body,
      event: request.headers.get('kylix-event'), auth: request.headers.get('authorization') });
  },
  async queue() { throw new Error('QUEUE-REACHED'); },
  async scheduled() { throw new Error('SCHEDULED-REACHED'); },
};`;

const BURN_AFTER = `
export default {
  fetch(request, env, ctx) {
    // Answers at once, then keeps a core busy in small slices (never one long task).
    const until = Date.now() + 4000;
    const slice = () => { const end = Date.now() + 15; while (Date.now() < end) {} if (Date.now() < until) setTimeout(slice, 0); };
    setTimeout(slice, 0);
    return new Response('answered');
  },
};`;

for (const bubblewrap of ['auto', 'off'] as const) {
  describe(`hostile: the bridge (bubblewrap ${bubblewrap})`, () => {
    let a: Arena;
    let port: number;
    before(async () => {
      a = await arena({ isolation: { bubblewrap } });
      await a.deploy({
        hello: {
          code: "export default { fetch() { return new Response('hi'); } };",
          spec: 'limits:\n  cpuMs: 200',
        },
        echo: { code: ECHO },
        counter: {
          code: 'let seen = 0; export default { fetch() { return Response.json({ seen: ++seen }); } };',
          spec: 'limits:\n  timeoutMs: 1000',
        },
        'burn-after': { code: BURN_AFTER, spec: 'limits:\n  cpuMs: 200' },
      });
      port = Number(new URL(a.node.url('/')).port);
    });
    after(() => a.close());

    it('a chunked body on a GET cannot smuggle a second request', async () => {
      const smuggled = 'GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
      const chunk = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
      const out = await rawHttp(
        port,
        `GET /echo/first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`,
      );
      assert.equal(out.match(/HTTP\/1\.1 /g)?.length ?? 0, 1, out);
      assert.doesNotMatch(out, /smuggled/);
      // The next client's request is its own, not anybody's body.
      const next = (await (
        await a.get('/echo/next', {
          method: 'POST',
          headers: { authorization: 'Bearer victim' },
          body: 'mine',
        })
      ).json()) as { body: string; auth: string; url: string };
      assert.equal(next.body, 'mine');
      assert.match(next.url, /\/echo\/next$/);
    });

    it('bodies on GET, HEAD, DELETE and OPTIONS stay inside their own request', async () => {
      for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
        const smuggled = 'POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
        const out = await rawHttp(
          port,
          `${method} /echo/${method} HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
        );
        assert.equal(out.match(/HTTP\/1\.1 /g)?.length ?? 0, 1, `${method}: ${out}`);
      }
    });

    it('conflicting framing (Content-Length with Transfer-Encoding) is refused, not forwarded', async () => {
      const out = await rawHttp(
        port,
        'POST /echo/cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
      );
      assert.match(out, /^HTTP\/1\.1 400/);
      assert.doesNotMatch(out, /smuggled/);
    });

    it('no header a client sends reaches queue() or scheduled(), or sets the request id', async () => {
      for (const event of ['queue', 'scheduled']) {
        const res = await a.get('/echo/event', {
          method: 'POST',
          headers: { 'kylix-event': event, 'kylix-request-id': 'forged' },
          body: JSON.stringify({ queue: 'q', messages: [], cron: '* * * * *', scheduledTime: 0 }),
        });
        assert.equal(res.status, 200);
        assert.notEqual(res.headers.get('kylix-request-id'), 'forged');
        const seen = (await res.json()) as { event: string };
        // The function's fetch() saw an ordinary header; neither event handler ran.
        assert.equal(seen.event, event);
      }
      const log = a.node.platform.logs.tail('default', 'echo', 1000).map((e) => e.message);
      assert.ok(!log.some((m) => /QUEUE-REACHED|SCHEDULED-REACHED/.test(m)), log.join('\n'));
    });

    it('a client that sends its body too slowly gets 408, and the instance keeps serving others', async () => {
      const before = (await (await a.get('/counter')).json()) as { seen: number };
      const out = await rawHttp(
        port,
        'POST /counter HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-ten-b',
        2500,
      );
      assert.match(out, /^HTTP\/1\.1 408/);
      assert.match(out, /ERR_REQUEST_TIMEOUT/);
      const after = (await (await a.get('/counter')).json()) as { seen: number };
      assert.equal(after.seen, before.seen + 1, 'the instance was replaced because a client was slow');
    });

    it('a revision header of __proto__ or constructor is an unknown tag (404), not a server error', async () => {
      for (const tag of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
        const res = await a.get('/echo/tag', { headers: { 'kylix-revision': tag } });
        assert.equal(res.status, 404, tag);
      }
    });

    it('steady load on a quick function never trips its CPU limit (only work after a response counts)', async () => {
      let next = 0;
      const statuses = new Map<number, number>();
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next++ < 3000) {
            const res = await a.get('/hello');
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          }
        }),
      );
      assert.deepEqual([...statuses.keys()], [200], JSON.stringify([...statuses]));
      const stopped = a.node.platform.logs
        .tail('default', 'hello', 1000)
        .filter((e) => /Instance stopped/.test(e.message));
      assert.deepEqual(stopped, []);
    });

    it('CPU a function burns after it answered counts against its cpuMs', async () => {
      const res = await a.get('/burn-after');
      assert.equal(await res.text(), 'answered');
      const deadline = Date.now() + 3000;
      let stopped = false;
      while (Date.now() < deadline && !stopped) {
        await new Promise((r) => setTimeout(r, 50));
        stopped = a.node.platform.logs
          .tail('default', 'burn-after', 100)
          .some((e) => /Instance stopped: .*after its response used more than 200 ms/.test(e.message));
      }
      assert.ok(stopped, 'the instance kept burning CPU after its response');
      await a.neighbourOk();
    });
  });
}

/** A binding call's payload as an instance writes it (rpc-codec.ts). */
function payloadOf(value: unknown): Uint8Array {
  return encodeFrame(0, value);
}

/** A well-formed call, to cut or pad. */
const call = { binding: 'KV', op: 'get', args: ['a-key'] };

/** The compact form of `depth` arrays, each holding the next (a nesting no writer sends). */
function deepArray(depth: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < depth; i++) out.push(8, 1, 0, 0, 0);
  out.push(1);
  return out;
}

/** A stream sink that ignores what it is told: these tests watch the channel, not the stream. */
function ignoreAll(): StreamSink {
  const nothing = () => undefined;
  return {
    response: nothing,
    body: nothing,
    end: nothing,
    threw: nothing,
    reset: nothing,
    credit: nothing,
    closed: nothing,
  };
}

describe('hostile: a sandbox process that lies on its channel', () => {
  /** A channel bound to one revision ("ns-a"), its calls recorded; `broken` says why it was ended. */
  async function boundChannel() {
    const pair = await socketPair();
    const calls: { revision: string; call: BindingCall }[] = [];
    const broken: string[] = [];
    const channel = new InstanceChannel(
      pair.ours,
      {
        rpc: async (call) => {
          calls.push({ revision: 'ns-a/fn/1', call });
          return 'ok';
        },
        log: () => undefined,
      },
      (reason) => broken.push(reason),
    );
    const closed = new Promise<void>((r) => pair.theirs.once('close', () => r()));
    return { ...pair, channel, calls, broken, closed };
  }

  it('a binding call acts for the channel’s revision, whatever ids or namespaces it names', async () => {
    const c = await boundChannel();
    const lies = {
      binding: 'KV',
      op: 'get',
      args: ['k'],
      id: 'ns-b/other/1/1',
      namespace: 'ns-b',
      instance: 'x',
    };
    c.theirs.write(frame(F.RPC, 7, payloadOf(lies)));
    const answered = await new Promise<Buffer>((r) => c.theirs.once('data', r));
    assert.equal(answered[4], F.RPC_RESULT);
    assert.equal(c.calls.length, 1);
    assert.equal(c.calls[0]?.revision, 'ns-a/fn/1');
    c.done();
  });

  it('a binding call holding millions of one-byte values is refused, not built (8 bytes each in memory)', async () => {
    const c = await boundChannel();
    // 3 million nulls: 3 MB on the wire, 24 MB as an array, past the broker's budget of 1 million.
    const nulls = new Uint8Array(3_000_000).fill(1);
    const head = payloadOf({ binding: 'KV', op: 'get', args: [] });
    // Replace the empty args array's count (the last 4 bytes) with 3 million, then the nulls.
    const body = new Uint8Array(head.byteLength + nulls.byteLength);
    body.set(head);
    new DataView(body.buffer).setUint32(head.byteLength - 4, nulls.byteLength, true);
    body.set(nulls, head.byteLength);
    c.theirs.write(frame(F.RPC, 9, body));
    const answered = await new Promise<Buffer>((r) => c.theirs.once('data', r));
    assert.equal(answered[4], F.RPC_RESULT);
    const result = decodePayload(answered.subarray(9)).value as { ok: boolean; error: { code: string } };
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'ERR_BINDING_TOO_LARGE');
    assert.equal(c.calls.length, 0);
    assert.equal(c.broken.length, 0, 'an honest call too big is refused; the channel stays');
    c.done();
  });

  for (const [what, bytes] of [
    ['an unknown frame type', frame(99, 1)],
    ['a frame longer than the limit', frameHeader(F.BODY, 1, 2 ** 31)],
    ['a binding call that is not an object', frame(F.RPC, 1, payloadOf('nope'))],
    ['a binding call with no operation', frame(F.RPC, 1, payloadOf({ binding: 'KV', args: [] }))],
    [
      'a structured-clone binding call with no operation',
      frame(F.RPC, 1, new Uint8Array([2, ...serialize({ binding: 'KV', args: [] })])),
    ],
    ['a binding call in an unknown form', frame(F.RPC, 1, new Uint8Array([0xff, 0x0f, 0x22]))],
    ['a binding call cut short', frame(F.RPC, 1, payloadOf(call).subarray(0, 12))],
    ['a binding call with bytes after it', frame(F.RPC, 1, new Uint8Array([...payloadOf(call), 0]))],
    // An array that says it holds 2^32-1 values, in a 6-byte payload: refused before any allocation.
    [
      'a binding call whose count passes its payload',
      frame(F.RPC, 1, new Uint8Array([1, 8, 255, 255, 255, 255])),
    ],
    ['a binding call with an unknown value tag', frame(F.RPC, 1, new Uint8Array([1, 77]))],
    ['a binding call nested past the limit', frame(F.RPC, 1, new Uint8Array([1, ...deepArray(200)]))],
    ['a response head that is not JSON', frame(F.RESPONSE, 1, new Uint8Array([0, 0, 0, 2, 123, 123]))],
    ['a response head with no status', headFrame(F.RESPONSE, 1, { h: [] })],
  ] as const) {
    it(`${what} ends the process's channel`, async () => {
      const c = await boundChannel();
      c.channel.open(ignoreAll());
      c.theirs.write(bytes);
      await c.closed;
      assert.equal(c.broken.length, 1, what);
      assert.equal(c.calls.length, 0);
      c.done();
    });
  }

  // The gateway would answer the client with a status nobody sent (Node's implicit 200).
  for (const [what, type] of [
    ['response body bytes', F.BODY],
    ['a response end', F.END],
  ] as const)
    it(`${what} before the response head: the channel is ended`, async () => {
      const c = await boundChannel();
      const id = c.channel.open(ignoreAll());
      c.theirs.write(frame(type, id, type === F.BODY ? new Uint8Array(3) : undefined));
      await c.closed;
      assert.match(c.broken[0] ?? '', /before the response head/);
      c.done();
    });

  it('response body bytes past the credit granted end the channel', async () => {
    const c = await boundChannel();
    const id = c.channel.open(ignoreAll());
    c.theirs.write(headFrame(F.RESPONSE_HEAD, id, { s: 200, h: [] }));
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 8; i++) c.theirs.write(frame(F.BODY, id, chunk));
    await c.closed;
    assert.match(c.broken[0] ?? '', /past the credit/);
    c.done();
  });
});
