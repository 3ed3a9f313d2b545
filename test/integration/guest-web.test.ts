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
          if (path === '/web/record') return new Response('r', { headers: { 'X-Mixed': 'a', 'x-mixed': 'b', 'content-type': 'text/x-r' } });
          if (path === '/web/trim') return new Response('t', { headers: { 'x-space': '  v  ' } });
          if (path === '/web/mutated') { const r = new Response('m', { headers: { 'x-first': '1' } }); r.headers.set('x-later', '2'); return r; }
          if (path === '/web/copied') { const h = new Headers({ 'x-h': '1' }); const r = new Response('c', { headers: h }); h.set('x-h', 'changed'); return r; }
          if (path === '/web/fake') {
            const looksLikeHeaders = { forEach(cb) { cb('evil\\r\\nx: y', 'x-fake'); }, getSetCookie() { return []; } };
            const fake = Object.assign(Object.create(looksLikeHeaders), { 'x-own': 'own' });
            return new Response('f', { headers: fake });
          }
          if (path === '/web/bad') { try { new Response('b', { headers: { 'x-bad': 'a\\nb' } }); return new Response('accepted'); } catch (e) { return new Response(e.name); } }
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

  it('response headers given as a record, a Headers or something else mean what they mean on Workers', async () => {
    const record = await fetch(node.url('/web/record'));
    // Names that differ only in case are one header, values joined (as a Headers would).
    assert.equal(record.headers.get('x-mixed'), 'a, b');
    assert.equal(record.headers.get('content-type'), 'text/x-r');
    assert.equal((await fetch(node.url('/web/trim'))).headers.get('x-space'), 'v');
    const mutated = await fetch(node.url('/web/mutated'));
    assert.equal(mutated.headers.get('x-first'), '1');
    assert.equal(mutated.headers.get('x-later'), '2');
    assert.equal(mutated.headers.get('content-type'), 'text/plain;charset=UTF-8');
    // The Response copied the Headers when it was made: later changes to them are not sent.
    assert.equal((await fetch(node.url('/web/copied'))).headers.get('x-h'), '1');
    // An object that only looks like Headers is read as a record of its own string properties.
    const fake = await fetch(node.url('/web/fake'));
    assert.equal(fake.headers.get('x-own'), 'own', `${fake.status} ${JSON.stringify([...fake.headers])}`);
    assert.equal(fake.headers.get('x-fake'), null);
    assert.equal(await (await fetch(node.url('/web/bad'))).text(), 'TypeError');
  });
});
