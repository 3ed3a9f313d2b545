/**
 * The binding broker refuses what a function's manifest does not grant, before any backend runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BindingBroker, type BindingScope, type Providers } from '../src/bindings/broker.js';
import type { KeyValueProvider } from '../src/bindings/keyvalue/interface.js';
import type { ResourceRef } from '../src/bindings/provider.js';
import { Registry } from '../src/control-plane/registry.js';
import { SecretBox } from '../src/control-plane/secrets.js';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { KylixError } from '../src/errors.js';

describe('binding broker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kylix-broker-'));
  const calls: { op: string; ref: ResourceRef; args: unknown[] }[] = [];
  let broker: BindingBroker;
  let registry: Registry;
  const record =
    (op: string) =>
    async (ref: ResourceRef, ...args: unknown[]) => {
      calls.push({ op, ref, args });
      return op === 'begin' ? 'tx-1' : null;
    };
  // 'then' stays undefined so that awaiting the fake does not treat it as a promise.
  const fake = new Proxy({}, { get: (_t, op: string) => (op === 'then' ? undefined : record(op)) });
  const providers: Providers = {
    keyValue: async () => fake as KeyValueProvider,
    database: async () => fake as never,
    queue: async () => fake as never,
    bucket: async () => fake as never,
  };
  const scope: BindingScope = {
    namespace: 'shop',
    functionName: 'orders',
    bindings: { CACHE: { keyValue: 'sessions' }, DB: { database: 'main' }, KEY: { secret: 'stripe' } },
  };

  before(async () => {
    registry = new Registry(await openEmbeddedStore(join(dir, 'state')), SecretBox.open(join(dir, 'key')));
    await registry.write(
      'shop',
      { apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name: 'sessions' }, spec: {} },
      'create',
    );
    await registry.write(
      'shop',
      { apiVersion: 'kylix.dev/v1', kind: 'Database', metadata: { name: 'main' }, spec: {} },
      'create',
    );
    // The same name in another namespace must never be reachable.
    await registry.write(
      'other',
      { apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name: 'loot' }, spec: {} },
      'create',
    );
    broker = new BindingBroker(registry, providers);
  });
  after(async () => {
    await registry.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const denied = (code: string) => (e: KylixError) => e.code === code;

  it('passes a granted call to the provider, with the resource in the function’s own namespace', async () => {
    await broker.call(scope, {
      binding: 'CACHE',
      op: 'put',
      args: ['k', new Uint8Array([1]), { expiration: 2_000_000_000 }],
    });
    assert.deepEqual(calls.at(-1)?.ref, { namespace: 'shop', name: 'sessions' });
    assert.equal(calls.at(-1)?.op, 'put');
  });

  it('refuses unknown bindings, unknown operations, secrets and bad arguments', async () => {
    await assert.rejects(
      broker.call(scope, { binding: 'LOOT', op: 'get', args: ['k'] }),
      denied('ERR_BINDING_DENIED'),
    );
    await assert.rejects(
      broker.call(scope, { binding: 'CACHE', op: 'purge', args: [] }),
      denied('ERR_BINDING_DENIED'),
    );
    await assert.rejects(
      broker.call(scope, { binding: 'CACHE', op: 'constructor', args: [] }),
      denied('ERR_BINDING_DENIED'),
    );
    await assert.rejects(
      broker.call(scope, { binding: 'KEY', op: 'get', args: [] }),
      denied('ERR_BINDING_DENIED'),
    );
    await assert.rejects(
      broker.call(scope, { binding: 'CACHE', op: 'get', args: [42] }),
      denied('ERR_BINDING_BAD_ARGUMENTS'),
    );
  });

  it('refuses a binding whose resource does not exist in the namespace', async () => {
    const other: BindingScope = { ...scope, bindings: { LOOT: { keyValue: 'loot' } } };
    await assert.rejects(
      broker.call(other, { binding: 'LOOT', op: 'get', args: ['k'] }),
      (e: KylixError) => e.code === 'ERR_BINDING_DENIED' && /namespace "shop"/.test(e.message),
    );
  });

  it('takes what the watch cache knows exists without reading the store, and reads the store for the rest', async () => {
    const reads: string[] = [];
    const store = registry.store;
    const counting = Object.create(registry) as Registry;
    Object.defineProperty(counting, 'store', {
      value: new Proxy(store, {
        get: (target, prop) =>
          prop === 'get'
            ? (kind: string, namespace: string, name: string) => {
                reads.push(`${kind}/${namespace}/${name}`);
                return target.get(kind, namespace, name);
              }
            : Reflect.get(target, prop, target),
      }),
    });
    // The cache knows of shop/sessions only; it never answers for another namespace's "loot".
    const known = {
      has: (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}` === 'KeyValue/shop/sessions',
    };
    const cached = new BindingBroker(counting, providers, known);
    await cached.call(scope, { binding: 'CACHE', op: 'get', args: ['k'] });
    assert.deepEqual(reads, []);
    // Not in the cache (just created, say): the store decides.
    await cached.call(scope, { binding: 'DB', op: 'begin', args: [1000] });
    assert.deepEqual(reads, ['Database/shop/main']);
    const other: BindingScope = { ...scope, bindings: { LOOT: { keyValue: 'loot' } } };
    await assert.rejects(
      cached.call(other, { binding: 'LOOT', op: 'get', args: ['k'] }),
      (e: KylixError) => e.code === 'ERR_BINDING_DENIED',
    );
    assert.deepEqual(reads, ['Database/shop/main', 'KeyValue/shop/loot']);
  });

  it('refuses SQL parameters no driver can send, naming the parameter; takes every kind it can', async () => {
    const query = (params: unknown[]) =>
      broker.call(scope, { binding: 'DB', op: 'query', args: [{ sql: 'SELECT 1', params }] });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const [bad, says] of [
      [[1, new Date(Number.NaN)], /\$2: it is an invalid Date/],
      [[new Map([[1, 2]])], /\$1: a Map cannot be sent/],
      [[new Set([1])], /\$1: a Set cannot be sent/],
      [
        [[1, [new Date('nope')]]],
        /\$1: an element of its array: an element of its array: it is an invalid Date/,
      ],
      [[{ n: 1n }], /\$1: it cannot be sent as JSON/],
      // The call's argument budget refuses a cycle first (it has no depth).
      [[cyclic], /deeper|nest/],
      [[/re/], /\$1: a RegExp cannot be sent/],
    ] as const) {
      await assert.rejects(query([...bad]), (e: KylixError) => {
        assert.equal(e.code, 'ERR_BINDING_BAD_ARGUMENTS');
        assert.match(`${e.message} ${JSON.stringify(e.causes)}`, says);
        return true;
      });
    }
    const before = calls.length;
    await query([
      null,
      undefined,
      true,
      1.5,
      2n,
      's',
      new Date(0),
      new Uint8Array([1]),
      [1, [2]],
      { a: [1] },
    ]);
    await query([Object.assign(Object.create(null), { a: 1 })]);
    assert.equal(calls.length, before + 2);
  });

  it('lets only the function that opened a transaction use it', async () => {
    const tx = await broker.call(scope, { binding: 'DB', op: 'begin', args: [1000] });
    const thief: BindingScope = { ...scope, functionName: 'thief' };
    await assert.rejects(
      broker.call(thief, { binding: 'DB', op: 'commit', args: [tx] }),
      denied('ERR_BINDING_DENIED'),
    );
    await broker.call(scope, { binding: 'DB', op: 'commit', args: [tx] });
    await assert.rejects(
      broker.call(scope, { binding: 'DB', op: 'commit', args: [tx] }),
      denied('ERR_BINDING_DENIED'),
    );
  });
});
