/**
 * Resource identities: every backend name derived from (namespace, name) is injective, so two
 * tenants never share a database, schema, stream, subject, key prefix or folder.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { identifierFor } from '../src/bindings/database/common.js';
import { type ResourceIdentity, resourceIdentity } from '../src/bindings/identity.js';
import type { ResourceRef } from '../src/bindings/provider.js';
import type { KylixError } from '../src/errors.js';
import { collidingGroups } from './bindings/colliding-refs.js';

const FORMS: (keyof ResourceIdentity)[] = ['path', 'token', 'sql'];

/** Asserts that no two refs share any form of their identity. */
function assertInjective(refs: ResourceRef[]): void {
  for (const form of FORMS) {
    const seen = new Map<string, ResourceRef>();
    for (const ref of refs) {
      const id = resourceIdentity(ref)[form];
      const other = seen.get(id);
      assert.equal(
        other,
        undefined,
        `${form} "${id}" is shared by ${JSON.stringify(other)} and ${JSON.stringify(ref)}`,
      );
      seen.set(id, ref);
    }
  }
}

/** Every DNS label over `alphabet` up to `max` characters. */
function labels(alphabet: string, max: number): string[] {
  let level = [''];
  const out: string[] = [];
  for (let n = 1; n <= max; n++) {
    level = level.flatMap((p) => [...alphabet].map((c) => p + c));
    out.push(...level.filter((l) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(l)));
  }
  return out;
}

/** A random DNS label of `length` characters, dash-heavy so splits collide under a naive scheme. */
function randomLabel(length: number): string {
  const bytes = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += 'ab-'[bytes[i]! % 3];
  return `a${s.slice(1, -1)}b`.slice(0, length);
}

describe('resource identities', () => {
  it('keep apart every group the old "-" to "_" scheme folded together', () => {
    for (const group of collidingGroups()) assertInjective(group);
    assertInjective(collidingGroups().flat());
  });

  it('are injective over every pair of short labels made of "a", "b" and "-"', () => {
    const all = labels('ab-', 5);
    const refs = all.flatMap((namespace) => all.map((name) => ({ namespace, name })));
    assert.ok(refs.length > 10_000, `${refs.length} pairs`);
    assertInjective(refs);
  });

  it('are injective over long labels around the 63-byte limit', () => {
    const refs: ResourceRef[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const ref = { namespace: randomLabel(40 + (i % 24)), name: randomLabel(10 + (i % 54)) };
      const key = `${ref.namespace} ${ref.name}`;
      if (!seen.has(key)) refs.push(ref);
      seen.add(key);
    }
    // Every split of one dashed string into namespace and name.
    const joined = 'a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-0-1-2-3-4-5-6-7-8-9-a-b-c';
    for (let i = 1; i < joined.length - 1; i++) {
      if (joined[i] !== '-') continue;
      const namespace = joined.slice(0, i);
      const name = joined.slice(i + 1);
      if (namespace.length <= 63 && name.length <= 63) refs.push({ namespace, name });
    }
    assertInjective(refs);
  });

  it('fit every backend: PostgreSQL 63 bytes, NATS tokens, paths without "." segments', () => {
    const refs = [
      ...collidingGroups().flat(),
      { namespace: 'x'.repeat(63), name: 'y'.repeat(63) },
      { namespace: 'a', name: 'b' },
    ];
    for (const ref of refs) {
      const id = resourceIdentity(ref);
      assert.ok(Buffer.byteLength(id.sql) <= 63, id.sql);
      assert.match(id.sql, /^kylix_[a-z0-9_-]+$/);
      assert.equal(identifierFor(ref), id.sql, 'the Database providers use the same identifier');
      // A NATS stream name may not hold ".", "*", ">", "/", "\\" or whitespace; a subject token no ".".
      assert.match(id.token, /^[a-z0-9_-]+$/);
      assert.equal(id.path.split('/').length, 2);
      assert.ok(!id.path.split('/').some((seg) => seg === '' || seg === '.' || seg === '..'));
    }
  });

  it('keep a readable prefix of a long name, and differ in the hash when the prefix is shared', () => {
    const a = resourceIdentity({
      namespace: 'team-payments-production',
      name: `ledger-${'x'.repeat(50)}`,
    }).sql;
    const b = resourceIdentity({
      namespace: 'team-payments-production',
      name: `ledger-${'x'.repeat(49)}y`,
    }).sql;
    assert.ok(a.startsWith('kylix_team-payments-production_le'), a);
    assert.equal(a.length, 63);
    assert.notEqual(a, b);
    // A shortened identifier always holds "__"; a full one never does.
    assert.match(a, /__[0-9a-f]{24}$/);
    assert.doesNotMatch(resourceIdentity({ namespace: 'a--b', name: 'c--d' }).sql, /__/);
  });

  it('refuse a namespace or name that is not a DNS label, so no separator can be forged', () => {
    for (const ref of [
      { namespace: 'a_b', name: 'c' },
      { namespace: 'a', name: 'b/c' },
      { namespace: 'A', name: 'b' },
      { namespace: 'a', name: '' },
      { namespace: '-a', name: 'b' },
      { namespace: 'a.b', name: 'c' },
      { namespace: 'a', name: 'x'.repeat(64) },
      { namespace: 'a\u0000', name: 'b' },
    ])
      assert.throws(
        () => resourceIdentity(ref),
        (e: KylixError) => e.code === 'ERR_BINDING_BAD_ARGUMENTS',
        JSON.stringify(ref),
      );
  });
});
