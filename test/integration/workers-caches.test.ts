/**
 * The Workers `caches` global through a real node over HTTP, with the Cloudflare docs' own cache
 * pattern (match, else build and put with s-maxage): hits, what is never kept, Vary, named
 * caches, delete, expiry, and one namespace never reading another's entries. On the embedded
 * KeyValue backend and, when Redis is reachable, on Redis (the fleet's).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { applyManifests } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import { type Installation, loadInstallation } from '../../src/config/installation.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';

const APP = `
let built = 0;
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const key = 'https://cache.test' + (url.searchParams.get('key') ?? url.pathname);
    const cache = url.searchParams.has('named') ? await caches.open('named') : caches.default;
    if (url.pathname.endsWith('/delete')) return Response.json({ deleted: await cache.delete(key) });
    if (url.pathname.endsWith('/refusals')) {
      const refused = [];
      for (const [name, fn] of [
        ['post', () => cache.put(new Request(key, { method: 'POST' }), new Response('x'))],
        ['partial', () => cache.put(key, new Response('x', { status: 206 }))],
        ['vary-star', () => cache.put(key, new Response('x', { headers: { vary: '*' } }))],
      ]) await fn().then(() => refused.push(name + ':stored'), (e) => refused.push(name + ':' + e.constructor.name));
      for (const [name, headers] of [
        ['no-store', { 'cache-control': 'no-store' }],
        ['private', { 'cache-control': 'private, max-age=60' }],
        ['cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }],
      ]) {
        await cache.put(key + '/' + name, new Response('x', { headers }));
        refused.push(name + ':' + ((await cache.match(key + '/' + name)) ? 'kept' : 'not kept'));
      }
      refused.push('post-match:' + String(await cache.match(new Request(key, { method: 'POST' }))));
      return Response.json(refused);
    }
    const cacheKey = new Request(key, request);
    let response = await cache.match(cacheKey);
    if (!response) {
      built++;
      response = new Response('built ' + built + ' for ' + (request.headers.get('accept-language') ?? '-'), {
        headers: { 'content-type': 'text/plain', etag: '"v' + built + '"' },
      });
      response.headers.append('cache-control', 's-maxage=' + (url.searchParams.get('ttl') ?? '60'));
      if (url.searchParams.has('vary')) response.headers.set('vary', 'Accept-Language');
      ctx.waitUntil(cache.put(cacheKey, response.clone()));
    }
    return response;
  },
};
`;

const redisUrl = 'redis://127.0.0.1:6379';
const redisDown = await reachable(redisUrl);
if (redisDown) console.log(`# skipping the caches suite on Redis: ${redisDown}`);

for (const [backend, installation, skip] of [
  ['embedded', undefined, undefined],
  ['redis', loadInstallation(undefined, { KYLIX_REDIS_URL: redisUrl }), redisDown],
] as [string, Installation | undefined, string | undefined][]) {
  describe(`caches on the ${backend} KeyValue backend`, { skip }, () => {
    let node: TestNode;
    const ns = `c${randomBytes(3).toString('hex')}`;
    const other = `o${randomBytes(3).toString('hex')}`;
    before(async () => {
      node = await startNode({ installation, namespace: ns });
      assert.ok(
        (
          await apply(
            node,
            writeProject({ 'kylix.yaml': functionManifest('c', './app.js', ['/c/*']), 'app.js': APP }),
          )
        ).ok,
      );
      // The same code in another namespace, on its own route: it must never see the first one's entries.
      const client = new ApiClient({ server: node.platform.apiUrl, namespace: other });
      const project = writeProject({
        'kylix.yaml': functionManifest('c', './app.js', ['/o/*']),
        'app.js': APP,
      });
      assert.ok((await applyManifests(client, [project], { out: () => {} })).ok);
    });
    after(() => node.destroy());
    const get = (path: string, headers: Record<string, string> = {}) => fetch(node.url(path), { headers });
    /** GETs until the put the first request left to waitUntil has landed, then answers that hit. */
    const hit = async (path: string, headers: Record<string, string> = {}) => {
      let res: Response | undefined;
      await eventually(async () => {
        res = await get(path, headers);
        return res.headers.get('cf-cache-status') === 'HIT';
      });
      return res!;
    };

    it('answers from the cache after the first request, with CF-Cache-Status and Age', async () => {
      const first = await get('/c/page');
      assert.equal(await first.text(), 'built 1 for *');
      assert.equal(first.headers.get('cf-cache-status'), null);
      const again = await hit('/c/page');
      assert.equal(await again.text(), 'built 1 for *');
      assert.equal(again.headers.get('content-type'), 'text/plain');
      assert.match(again.headers.get('age') ?? '', /^\d+$/);
      const conditional = await get('/c/page', { 'if-none-match': '"v1"' });
      assert.equal(conditional.status, 304);
    });

    it('keeps a named cache apart from the default one, and deletes entries', async () => {
      const named = await (await get('/c/page?named')).text();
      assert.match(named, /^built \d+ for \*$/);
      assert.notEqual(named, 'built 1 for *', 'a miss in the named cache: built again');
      await hit('/c/page?named');
      assert.deepEqual(await (await get('/c/delete?key=/c/page&named')).json(), { deleted: true });
      assert.deepEqual(await (await get('/c/delete?key=/c/page&named')).json(), { deleted: false });
      assert.equal(
        (await get('/c/page')).headers.get('cf-cache-status'),
        'HIT',
        'the default cache kept its entry',
      );
    });

    it('never reads another namespace’s entries for the same URL', async () => {
      const theirs = await get('/o/page?key=/c/page');
      assert.equal(theirs.headers.get('cf-cache-status'), null);
      assert.equal(await theirs.text(), 'built 1 for *', 'built by the other namespace’s own function');
      assert.deepEqual(await (await get('/o/delete?key=/nothing')).json(), { deleted: false });
    });

    it('refuses what Workers refuse and keeps nothing that may not be kept', async () => {
      assert.deepEqual(await (await get('/c/refusals')).json(), [
        'post:TypeError',
        'partial:TypeError',
        'vary-star:TypeError',
        'no-store:not kept',
        'private:not kept',
        'cookie:not kept',
        'post-match:undefined',
      ]);
    });

    it('honours Vary, and lets entries expire with their max-age', async () => {
      await get('/c/varied?vary', { 'accept-language': 'fr' });
      const fr = await hit('/c/varied?vary', { 'accept-language': 'fr' });
      assert.match(await fr.text(), /for fr$/);
      const de = await get('/c/varied?vary', { 'accept-language': 'de' });
      assert.equal(de.headers.get('cf-cache-status'), null, 'another language is a miss');
      await get('/c/short?ttl=1');
      await hit('/c/short?ttl=1');
      await eventually(async () => (await get('/c/short?ttl=1')).headers.get('cf-cache-status') === null);
    });
  });
}
