/**
 * The registry of binding kinds is the one list: the tenant-side binding objects call exactly the
 * operations their kind declares, and the installation config takes what each kind's providers take.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createProviders } from '../src/bindings/providers.js';
import { ALL_BINDING_KINDS, BINDING_KINDS } from '../src/bindings/registry.js';
import { loadInstallation } from '../src/config/installation.js';
import type { KylixError } from '../src/errors.js';
import { BINDING_KIND_NAMES, BINDING_RESOURCE_KINDS } from '../src/resources/binding-kinds.js';
import { BUCKET_OPS } from '../src/sandbox/bindings/bucket.js';
import { DATABASE_OPS } from '../src/sandbox/bindings/database.js';
import { KEY_VALUE_OPS } from '../src/sandbox/bindings/keyvalue.js';
import { QUEUE_OPS } from '../src/sandbox/bindings/queue.js';
import { writeProject } from './helpers/platform.js';
import { tempDir } from './helpers/temp-dir.js';

describe('binding registry', () => {
  it('holds every kind of resources/binding-kinds.ts, under its name, with its resource kind', () => {
    assert.deepEqual(Object.keys(BINDING_KINDS), BINDING_KIND_NAMES);
    for (const kind of ALL_BINDING_KINDS) assert.equal(kind.resourceKind, BINDING_RESOURCE_KINDS[kind.name]);
  });

  it('the sandbox binding objects call exactly the operations of their kind', () => {
    const sandbox = {
      database: DATABASE_OPS,
      keyValue: KEY_VALUE_OPS,
      queue: QUEUE_OPS,
      bucket: BUCKET_OPS,
    };
    for (const name of BINDING_KIND_NAMES)
      assert.deepEqual([...sandbox[name]].sort(), Object.keys(BINDING_KINDS[name].ops).sort(), name);
  });

  it('accepts the provider options docs/operations.md documents, and passes them on', () => {
    const dir = writeProject({
      'kylix.yaml': [
        'backends:',
        '  keyValue: { provider: redis, url: "redis://cache:6379", keyPrefix: "shop:" }',
        '  database: { provider: postgres, url: "postgres://db/postgres", poolSize: 5, statementTimeoutMs: 1000 }',
        '  queue: { provider: nats, url: "nats://n1:4222,nats://n2:4222", replicas: 3, monitorUrl: "http://n1:8222" }',
        '',
      ].join('\n'),
    });
    const { backends } = loadInstallation(join(dir, 'kylix.yaml'), {});
    assert.deepEqual(backends.keyValue, { provider: 'redis', url: 'redis://cache:6379', keyPrefix: 'shop:' });
    assert.deepEqual(backends.database, {
      provider: 'postgres',
      url: 'postgres://db/postgres',
      poolSize: 5,
      statementTimeoutMs: 1000,
    });
    assert.deepEqual(backends.queue, {
      provider: 'nats',
      url: 'nats://n1:4222,nats://n2:4222',
      replicas: 3,
      monitorUrl: 'http://n1:8222',
    });
  });

  it('refuses out-of-range provider options, naming the field', () => {
    const dir = writeProject({ 'bad.yaml': '' });
    writeFileSync(
      join(dir, 'bad.yaml'),
      'backends:\n  queue: { provider: nats, url: "nats://x:4222", replicas: 9 }\n  database: { provider: postgres, url: "postgres://x/y", poolSize: 0 }\n',
    );
    assert.throws(
      () => loadInstallation(join(dir, 'bad.yaml'), {}),
      (e: KylixError) => {
        const fields = e.causes.map((c) => c.field);
        assert.ok(fields.includes('backends.queue.replicas'), fields.join());
        assert.ok(fields.includes('backends.database.poolSize'), fields.join());
        return true;
      },
    );
  });

  it('keeps an embedded kind’s data where the config says', async () => {
    const elsewhere = tempDir('registry-kv');
    const dir = writeProject({
      'kylix.yaml': `backends:\n  keyValue: { provider: embedded, dataDir: "${elsewhere}" }\n`,
    });
    const installation = loadInstallation(join(dir, 'kylix.yaml'), {});
    const ref = { namespace: 'default', name: 'x' };
    const first = createProviders(installation, tempDir('registry-node-a'));
    await (await first.keyValue()).put(ref, 'k', new Uint8Array([1]));
    await first.close();
    assert.ok(readdirSync(elsewhere).length > 0, 'the data is in the configured folder');
    // Another node data folder, the same configured dataDir: the same data.
    const second = createProviders(installation, tempDir('registry-node-b'));
    assert.deepEqual((await (await second.keyValue()).get(ref, 'k'))?.value, new Uint8Array([1]));
    await second.close();
  });
});
