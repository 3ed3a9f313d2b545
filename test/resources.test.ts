import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KylixError } from '../src/errors.js';
import { jsonSchemaFor } from '../src/resources/json-schema.js';
import { parseManifest } from '../src/resources/manifest.js';
import { validateObject } from '../src/resources/validate.js';

function causesOf(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KylixError, `expected a KylixError, got ${err}`);
    assert.equal(err.code, 'ERR_MANIFEST_INVALID');
    return Object.fromEntries(err.causes.map((c) => [c.field, c.message]));
  }
  assert.fail('expected validation to fail');
}

describe('manifest validation', () => {
  it('applies defaults to a minimal Function', () => {
    const v = validateObject({
      apiVersion: 'kylix.dev/v1',
      kind: 'Function',
      metadata: { name: 'hello' },
      spec: { source: './a.ts' },
    });
    const spec = v.spec as {
      limits: { cpuMs: number; timeoutMs: number; memoryMiB: number };
      routes: unknown[];
      scaling: { minInstances: number };
    };
    assert.equal(spec.limits.cpuMs, 1000);
    assert.equal(spec.limits.timeoutMs, 30_000);
    assert.equal(spec.limits.memoryMiB, 128);
    assert.deepEqual(spec.routes, []);
    assert.equal(spec.scaling.minInstances, 0);
  });

  it('lists every error at once, each with its field path, unknown fields included', () => {
    const causes = causesOf(() =>
      validateObject({
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: { name: 'Bad_Name', colour: 'red' },
        spec: {
          source: './a.ts',
          routes: [{ path: 'hello' }, { path: '/ok', method: 'GET' }],
          limits: { cpuMs: 1 },
          triggers: { schedule: { cron: '* *', timezone: 'Mars/Olympus' } },
          extra: true,
        },
      }),
    );
    assert.equal(causes['spec.routes[0].path'], 'must start with "/"');
    assert.equal(causes['spec.routes[1].method'], 'unknown field');
    assert.equal(causes['metadata.colour'], 'unknown field');
    assert.equal(causes['spec.extra'], 'unknown field');
    assert.match(causes['metadata.name'] ?? '', /lowercase/);
    assert.match(causes['spec.limits.cpuMs'] ?? '', />=\s*10|10/);
    assert.match(causes['spec.triggers.schedule.cron'] ?? '', /five fields/);
    assert.match(causes['spec.triggers.schedule.timezone'] ?? '', /IANA/);
    assert.equal(Object.keys(causes).length, 8);
  });

  it('rejects an unknown kind or apiVersion with the allowed values', () => {
    assert.match(
      causesOf(() => validateObject({ apiVersion: 'kylix.dev/v1', kind: 'Lambda', metadata: { name: 'x' } }))
        .kind ?? '',
      /Function, Database, KeyValue, Queue, Bucket, Secret/,
    );
    assert.match(
      causesOf(() => validateObject({ apiVersion: 'v1', kind: 'Bucket', metadata: { name: 'x' }, spec: {} }))
        .apiVersion ?? '',
      /kylix\.dev\/v1/,
    );
  });

  it('requires spec.source and rejects a misplaced wildcard', () => {
    const causes = causesOf(() =>
      validateObject({
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: { name: 'x' },
        spec: { routes: [{ path: '/a/*/b' }] },
      }),
    );
    assert.match(causes['spec.source'] ?? '', /^is required: give the code as source .*, code .* or bundle/);
    assert.match(causes['spec.routes[0].path'] ?? '', /only as its whole last segment/);
  });

  it('accepts every kind of DESIGN §1', () => {
    for (const [kind, spec] of [
      ['Database', { migrations: './migrations' }],
      ['KeyValue', {}],
      ['Queue', {}],
      ['Bucket', {}],
      ['Secret', { stringData: { token: 'x' } }],
    ] as const) {
      assert.equal(
        validateObject({ apiVersion: 'kylix.dev/v1', kind, metadata: { name: 'r' }, spec }).kind,
        kind,
      );
    }
  });

  it('reads several YAML documents from one file and names the line of a syntax error', () => {
    const docs = parseManifest('kind: Bucket\n---\n---\nkind: Queue\n', 'm.yaml');
    assert.deepEqual(
      docs.map((d) => d.object.kind),
      ['Bucket', 'Queue'],
    );
    assert.throws(
      () => parseManifest('kind: [unclosed\n', 'bad.yaml'),
      (err: KylixError) => err.code === 'ERR_MANIFEST_INVALID' && /bad\.yaml/.test(err.message),
    );
  });

  it('publishes a JSON Schema per kind that rejects unknown fields', () => {
    const schema = jsonSchemaFor('Function') as {
      properties: Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown }>;
      additionalProperties?: unknown;
    };
    assert.equal(schema.additionalProperties, false);
    assert.ok(schema.properties.spec?.properties?.routes);
    assert.equal(schema.properties.spec?.additionalProperties, false);
  });
});

describe('object and field limits in the schemas', () => {
  const fnObj = (spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) => ({
    apiVersion: 'kylix.dev/v1',
    kind: 'Function',
    metadata: { name: 'f', ...metadata },
    spec: { source: './x.ts', ...spec },
  });
  const causesOf = (input: unknown) => {
    try {
      validateObject(input);
      return [];
    } catch (err) {
      return (err as KylixError).causes;
    }
  };

  it('label values at most 63, keys as Kubernetes qualified names', () => {
    assert.deepEqual(causesOf(fnObj({}, { labels: { 'example.com/app': 'a-b_c.d', x: '' } })), []);
    assert.match(causesOf(fnObj({}, { labels: { a: 'v'.repeat(64) } }))[0]?.message ?? '', /63/);
    assert.equal(causesOf(fnObj({}, { labels: { '-a': 'v' } }))[0]?.field, 'metadata.labels.-a');
    assert.equal(causesOf(fnObj({}, { labels: { [`${'k'.repeat(64)}`]: 'v' } })).length, 1);
  });

  it('annotations at most 256 KiB together; ownerReferences at most 20', () => {
    assert.equal(causesOf(fnObj({}, { annotations: { a: 'x'.repeat(256 * 1024) } })).length, 1);
    assert.deepEqual(causesOf(fnObj({}, { annotations: { a: 'x'.repeat(255 * 1024) } })), []);
    const refs = Array.from({ length: 21 }, () => ({ kind: 'Function' }));
    assert.match(causesOf(fnObj({}, { ownerReferences: refs }))[0]?.message ?? '', /at most 20/);
  });

  it('routes at most 100, env at most 1,000 entries of at most 32 KiB', () => {
    const routes = Array.from({ length: 101 }, (_, i) => ({ path: `/r${i}` }));
    assert.equal(causesOf(fnObj({ routes }))[0]?.field, 'spec.routes');
    const env = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`K${i}`, 'v']));
    assert.match(causesOf(fnObj({ env }))[0]?.message ?? '', /at most 1000/);
    assert.equal(causesOf(fnObj({ env: { A: 'x'.repeat(33 * 1024) } }))[0]?.field, 'spec.env.A');
    assert.deepEqual(causesOf(fnObj({ env: { A: 'x'.repeat(32 * 1024) } })), []);
  });

  it('spec.vars: JSON values under env names, one namespace with env and bindings, at most 1,000 of 32 KiB as JSON', () => {
    const vars = { RETRIES: 3, DEBUG: false, NONE: null, LIST: [1, 'a'], CONFIG: { a: { b: 1 } }, NAME: 'x' };
    assert.deepEqual(causesOf(fnObj({ vars })), []);
    assert.deepEqual(validateObject(fnObj({ vars })).spec.vars, vars);
    assert.equal(causesOf(fnObj({ vars: { 'not-a-name': 1 } }))[0]?.field, 'spec.vars.not-a-name');
    assert.equal(causesOf(fnObj({ vars: { N: Number.POSITIVE_INFINITY } }))[0]?.field, 'spec.vars.N');
    assert.equal(causesOf(fnObj({ vars: { D: new Date(0) } }))[0]?.field, 'spec.vars.D');
    const twice = causesOf(fnObj({ env: { A: 'x' }, vars: { A: 1 } }));
    assert.equal(twice[0]?.field, 'spec.vars.A');
    assert.match(twice[0]?.message ?? '', /already a name in spec\.env or spec\.bindings/);
    assert.equal(
      causesOf(fnObj({ bindings: { KV: { keyValue: 'kv' } }, vars: { KV: true } }))[0]?.field,
      'spec.vars.KV',
    );
    assert.equal(
      causesOf(fnObj({ assets: { directory: './public', binding: 'ASSETS' }, vars: { ASSETS: 1 } }))[0]
        ?.field,
      'spec.assets.binding',
    );
    const many = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`K${i}`, i]));
    assert.match(causesOf(fnObj({ vars: many }))[0]?.message ?? '', /at most 1000/);
    const big = { list: Array.from({ length: 8 * 1024 }, () => 1234) };
    assert.equal(causesOf(fnObj({ vars: { BIG: big } }))[0]?.field, 'spec.vars.BIG');
    assert.match(causesOf(fnObj({ vars: { BIG: big } }))[0]?.message ?? '', /32 KiB as JSON/);
    assert.deepEqual(causesOf(fnObj({ vars: { OK: { s: 'x'.repeat(32 * 1024 - 10) } } })), []);
  });

  it('Secret values at most 1 MiB together; objects at most 1.5 MiB; nesting at most 64', () => {
    const secret = (spec: unknown) => ({
      apiVersion: 'kylix.dev/v1',
      kind: 'Secret',
      metadata: { name: 's' },
      spec,
    });
    assert.match(
      causesOf(secret({ stringData: { a: 'x'.repeat(1024 * 1024 + 1) } }))[0]?.message ?? '',
      /1 MiB/,
    );
    assert.deepEqual(causesOf(secret({ stringData: { a: 'x'.repeat(1000 * 1024) } })), []);
    const db = {
      apiVersion: 'kylix.dev/v1',
      kind: 'Database',
      metadata: { name: 'd' },
      spec: { migrationFiles: [{ name: 'a.sql', sql: 'x'.repeat(1.6 * 1024 * 1024) }] },
    };
    assert.match(causesOf(db)[0]?.message ?? '', /1\.5 MiB/);
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    assert.match(causesOf(fnObj({}, { labels: deep }))[0]?.message ?? '', /64 levels/);
  });

  it('the JSON Schemas carry the limits', () => {
    const schema = JSON.stringify(jsonSchemaFor('Function'));
    assert.match(schema, /"maxItems":100/);
    assert.match(schema, /"maxProperties":1000/);
    assert.match(schema, /"maxItems":20/);
  });

  it('a YAML alias bomb in a manifest names the file', () => {
    let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    let prev = 'a';
    for (const n of 'bcdefghi') {
      text += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
      prev = n;
    }
    assert.throws(() => parseManifest(text, 'bomb.yaml'), /bomb\.yaml: too many YAML aliases \(limit 100\)/);
    assert.throws(() => parseManifest('a: 1\na: 2\n', 'dup.yaml'), /dup\.yaml is not valid YAML/);
  });
});
