/**
 * The Web-standard objects a function works with, through the real platform: the light Request
 * behaves as a Request everywhere (copied, cloned, read, passed on), and every kind of Response
 * comes back intact.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

describe('guest Request and Response', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    await apply(
      node,
      writeProject({
        'kylix.yaml': functionManifest('web', './w.js', ['/web/*']),
        'w.js': `export default { async fetch(request) {
          const path = new URL(request.url).pathname;
          if (path === '/web/echo') {
            const clone = request.clone();
            const copy = new Request(request, { headers: { 'x-copied': '1' } });
            return Response.json({ method: request.method, isRequest: request instanceof Request, copied: copy.headers.get('x-copied'),
              url: copy.url, body: await clone.json(), header: request.headers.get('x-test') });
          }
          if (path === '/web/redirect') return Response.redirect('https://example.com/', 307);
          if (path === '/web/bytes') return new Response(new TextEncoder().encode('bytes!'), { headers: { 'x-kind': 'bytes' } });
          if (path === '/web/cookies') { const h = new Headers(); h.append('set-cookie', 'a=1'); h.append('set-cookie', 'b=2'); return new Response('c', { headers: h }); }
          if (path === '/web/status') return new Response(null, { status: 204 });
          return new Response('?', { status: 404 });
        } };`,
      }),
    );
  });
  after(() => node.destroy());

  it('a request can be copied, cloned and read like any Request', async () => {
    const res = await fetch(node.url('/web/echo'), {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'x-test': 't' },
    });
    assert.equal(
      res.headers.get('content-type'),
      'application/json',
      JSON.stringify(node.platform.logs.tail('default', 'web', 3)),
    );
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(body, {
      method: 'POST',
      isRequest: true,
      copied: '1',
      url: body.url,
      body: { a: 1 },
      header: 't',
    });
    assert.match(String(body.url), /\/web\/echo$/);
  });

  it('redirects, byte bodies, repeated Set-Cookie and empty bodies come back intact', async () => {
    const redirect = await fetch(node.url('/web/redirect'), { redirect: 'manual' });
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.get('location'), 'https://example.com/');
    const bytes = await fetch(node.url('/web/bytes'));
    assert.equal(await bytes.text(), 'bytes!');
    assert.equal(bytes.headers.get('x-kind'), 'bytes');
    const cookies = await fetch(node.url('/web/cookies'));
    assert.deepEqual(cookies.headers.getSetCookie(), ['a=1', 'b=2']);
    const empty = await fetch(node.url('/web/status'));
    assert.equal(empty.status, 204);
  });
});
