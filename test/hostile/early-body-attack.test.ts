/**
 * Request bodies nobody asked for, attacked by a client: uploads to a function that awaits other
 * work before it reads them (or answers without reading them at all). Whatever the gateway sends
 * before the function asks for a body is held by the instance outside its heap cap, so a client
 * sending hundreds of such uploads at once must not make the sandbox process hold a window of each
 * (and be ended for its memory, with every request on it). Through a real node, with bubblewrap on
 * (where installed) and off.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { rawHttp } from '../helpers/raw-http.js';
import { type Arena, arena } from './harness.js';

/** Awaits its other work, then answers without reading the body; /waiter/read reads it first. */
const WAITER = `
export default {
  async fetch(request) {
    await new Promise((r) => setTimeout(r, 1500));
    if (new URL(request.url).pathname.endsWith('/read')) {
      const bytes = new Uint8Array(await request.arrayBuffer());
      return new Response('read ' + bytes.byteLength + ' ' + bytes.reduce((a, b) => (a + b) % 65521, 0));
    }
    return new Response('answered');
  },
};`;

/** POSTs `body` to `path` and answers status and text (or the error's code). */
function post(a: Arena, path: string, body: Buffer): Promise<string> {
  const url = new URL(a.node.url(path));
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-length': body.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(`${res.statusCode} ${text.slice(0, 80)}`));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
    req.end(body);
  });
}

for (const bubblewrap of ['auto', 'off'] as const) {
  describe(`hostile: request bodies nobody asked for (bubblewrap ${bubblewrap})`, () => {
    let a: Arena;
    before(async () => {
      a = await arena({ isolation: { bubblewrap } });
      await a.deploy({
        reader: {
          code: 'export default { async fetch(request) { return new Response(await request.text()); } };',
          spec: 'limits:\n  timeoutMs: 1000',
        },
        waiter: {
          code: WAITER,
          spec: 'limits:\n  memoryMiB: 16\n  timeoutMs: 20000\nscaling:\n  maxInstances: 1\n  targetConcurrency: 1000',
        },
      });
    });
    after(() => a.close());

    it('was a hole, now held: waves of uploads the function does not read cost its instance nothing', async () => {
      // Each wave fills what the function's adaptive limit admits (it grows from 100 as the waves
      // use it); a 256 KiB window held for each ended the sandbox process for its memory by the third.
      const body = Buffer.alloc(300 * 1024, 7);
      for (let wave = 0; wave < 5; wave++) {
        const answers = await Promise.all(Array.from({ length: 500 }, () => post(a, '/waiter', body)));
        const refused = answers.filter((x) => !/^(200 answered|429 )/.test(x));
        assert.deepEqual(refused, [], `wave ${wave}`);
        assert.ok(answers.some((x) => x === '200 answered'));
      }
      await a.neighbourOk();
    });

    it('HELD: a body read after an await still arrives whole', async () => {
      const body = Buffer.alloc(3 * 2 ** 20);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
      const sum = body.reduce((s, b) => (s + b) % 65521, 0);
      assert.equal(await post(a, '/waiter/read', body), `200 read ${body.length} ${sum}`);
    });

    it('HELD: a client that sends a streamed body too slowly still gets 408, not its instance stopped', async () => {
      const port = Number(new URL(a.node.url('/')).port);
      const out = await rawHttp(
        port,
        'POST /reader HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly-ten-b',
        2500,
      );
      assert.match(out, /^HTTP\/1\.1 408/);
      assert.match(out, /ERR_REQUEST_TIMEOUT/);
    });
  });
}
