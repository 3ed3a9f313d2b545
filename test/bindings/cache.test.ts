/**
 * The Workers cache on the supervisor side: entries live in the calling namespace's internal
 * space of the KeyValue backend, which no resource and no other namespace can name, and what the
 * guest decides to keep follows the response's headers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BindingBroker, type BindingScope } from '../../src/bindings/broker.js';
import { CACHE_BINDING, cacheKind } from '../../src/bindings/cache/kind.js';
import { internalSpace, resourceIdentity } from '../../src/bindings/identity.js';
import { createKeyValueProvider } from '../../src/bindings/keyvalue/index.js';
import type { KeyValueProvider } from '../../src/bindings/keyvalue/interface.js';
import type { Providers } from '../../src/bindings/registry.js';
import type { Registry } from '../../src/control-plane/registry.js';
import type { KylixError } from '../../src/errors.js';
import { cacheTtl } from '../../src/sandbox/workers-compat/cache-policy.js';
import { CACHE_BINDING as GUEST_CACHE_BINDING } from '../../src/sandbox/workers-compat/caches.js';
import { tempDir } from '../helpers/temp-dir.js';

const scope = (namespace: string): BindingScope => ({ namespace, functionName: 'fn', bindings: {} });
const head = { status: 200, statusText: 'OK', headers: [['content-type', 'text/plain']], vary: [] };

describe('Workers cache: namespace spaces', () => {
  let kv: KeyValueProvider;
  let broker: BindingBroker;
  before(async () => {
    kv = await createKeyValueProvider({ provider: 'embedded', dataDir: tempDir('cache-kv') });
    // Implicit bindings never consult the registry: no resource backs a namespace's caches.
    broker = new BindingBroker({} as Registry, { keyValue: async () => kv } as unknown as Providers);
  });
  after(() => kv.close());

  it('the guest and the supervisor call caches by the same binding name, one no manifest can use', () => {
    assert.equal(GUEST_CACHE_BINDING, CACHE_BINDING);
    assert.doesNotMatch(CACHE_BINDING, /^[A-Za-z_][A-Za-z0-9_]*$/);
  });

  it('gives every namespace a space no resource of any namespace shares', () => {
    const space = resourceIdentity(internalSpace('shop', 'caches'));
    for (const ref of [
      { namespace: 'shop', name: 'caches' },
      { namespace: 'shop', name: 'a' },
      { namespace: 'caches', name: 'shop' },
    ]) {
      const other = resourceIdentity(ref);
      assert.notEqual(other.path, space.path);
      assert.notEqual(other.token, space.token);
      assert.ok(!space.path.startsWith(`${other.path}/`) && !other.path.startsWith(`${space.path}/`));
    }
    assert.notEqual(space.path, resourceIdentity(internalSpace('shop-a', 'caches')).path);
  });

  it('keeps one namespace’s entries from another, whatever the call carries', async () => {
    const url = 'https://example.com/shared';
    await broker.call(scope('alpha'), {
      binding: CACHE_BINDING,
      op: 'put',
      args: ['', url, head, new TextEncoder().encode('alpha only'), 60],
    });
    const own = (await broker.call(scope('alpha'), {
      binding: CACHE_BINDING,
      op: 'match',
      args: ['', url],
    })) as {
      body: Uint8Array;
    };
    assert.equal(new TextDecoder().decode(own.body), 'alpha only');
    assert.equal(
      await broker.call(scope('beta'), { binding: CACHE_BINDING, op: 'match', args: ['', url] }),
      null,
    );
    assert.equal(
      await broker.call(scope('alpha'), { binding: CACHE_BINDING, op: 'match', args: ['named', url] }),
      null,
    );
    // No argument names a namespace: one that tries is the wrong shape.
    await assert.rejects(
      broker.call(scope('beta'), {
        binding: CACHE_BINDING,
        op: 'match',
        args: ['', url, { namespace: 'alpha' }],
      }),
      (e: KylixError) => e.code === 'ERR_BINDING_BAD_ARGUMENTS',
    );
    // A KeyValue resource named "caches" in the namespace is another space.
    assert.equal((await kv.list({ namespace: 'alpha', name: 'caches' })).keys.length, 0);
    assert.equal(
      await broker.call(scope('beta'), { binding: CACHE_BINDING, op: 'delete', args: ['', url] }),
      false,
    );
    assert.equal(
      await broker.call(scope('alpha'), { binding: CACHE_BINDING, op: 'delete', args: ['', url] }),
      true,
    );
    assert.equal(
      await broker.call(scope('alpha'), { binding: CACHE_BINDING, op: 'match', args: ['', url] }),
      null,
    );
  });

  it('bounds what a sandbox may store, and refuses operations it does not have', async () => {
    const big = new Uint8Array(26 * 1024 * 1024);
    await assert.rejects(
      broker.call(scope('alpha'), {
        binding: CACHE_BINDING,
        op: 'put',
        args: ['', 'https://x/', head, big, 60],
      }),
      (e: KylixError) => e.code === 'ERR_BINDING_TOO_LARGE',
    );
    await assert.rejects(
      broker.call(scope('alpha'), {
        binding: CACHE_BINDING,
        op: 'put',
        args: ['', 'https://x/', head, new Uint8Array(1), 10 * 365 * 24 * 3600],
      }),
      (e: KylixError) => e.code === 'ERR_BINDING_BAD_ARGUMENTS',
    );
    await assert.rejects(
      broker.call(scope('alpha'), { binding: CACHE_BINDING, op: 'list', args: [] }),
      (e: KylixError) => e.code === 'ERR_BINDING_DENIED',
    );
    assert.deepEqual(Object.keys(cacheKind.ops).sort(), ['delete', 'match', 'put']);
  });
});

describe('Workers cache: what a put keeps', () => {
  const ttl = (status: number, headers: Record<string, string>) => cacheTtl(status, new Headers(headers), 0);
  it('follows Cache-Control (s-maxage over max-age), then Expires, then the edge defaults', () => {
    assert.equal(ttl(200, { 'cache-control': 'public, max-age=60' }), 60);
    assert.equal(ttl(200, { 'cache-control': 'max-age=60, s-maxage=10' }), 10);
    assert.equal(ttl(200, { expires: new Date(30_000).toUTCString() }), 30);
    assert.equal(ttl(200, {}), 7200);
    assert.equal(ttl(404, {}), 180);
    assert.equal(ttl(500, {}), undefined);
    assert.equal(ttl(200, { 'cache-control': 'max-age=99999999999' }), 365 * 24 * 3600);
  });
  it('keeps nothing for no-store, no-cache, private, max-age=0, a past Expires or a cookie', () => {
    for (const cc of ['no-store', 'no-cache', 'private', 'max-age=0'])
      assert.equal(ttl(200, { 'cache-control': cc }), undefined, cc);
    assert.equal(ttl(200, { expires: 'garbage' }), undefined);
    assert.equal(ttl(200, { 'set-cookie': 'a=b', 'cache-control': 'max-age=60' }), undefined);
    assert.equal(ttl(200, { 'set-cookie': 'a=b', 'cache-control': 'max-age=60, private=set-cookie' }), 60);
  });
});
