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
    assert.equal(causes['spec.source'], 'is required');
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
