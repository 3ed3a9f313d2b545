import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadInstallation } from '../src/config/installation.js';
import type { KylixError } from '../src/errors.js';
import { writeProject } from './helpers/platform.js';

describe('installation config', () => {
  it('defaults every kind to its embedded backend', () => {
    const c = loadInstallation(undefined, {});
    assert.deepEqual(
      Object.values(c.backends).map((b) => b.provider),
      ['embedded', 'embedded', 'embedded', 'embedded', 'embedded'],
    );
  });

  it('switches kinds to fleet backends from the file and from KYLIX_* env vars', () => {
    const dir = writeProject({
      'kylix.yaml': 'backends:\n  keyValue: { provider: redis, url: "redis://127.0.0.1:6379" }\n',
    });
    const c = loadInstallation(join(dir, 'kylix.yaml'), {
      KYLIX_POSTGRES_URL: 'postgres://127.0.0.1/test',
      KYLIX_NATS_URL: 'nats://127.0.0.1:4222',
    });
    assert.equal(c.backends.keyValue.provider, 'redis');
    assert.deepEqual(c.backends.database, { provider: 'postgres', url: 'postgres://127.0.0.1/test' });
    assert.equal(c.backends.queue.provider, 'nats');
    assert.equal(c.backends.bucket.provider, 'embedded');
  });

  it('puts the control plane state in a PostgreSQL schema for a fleet', () => {
    const dir = writeProject({
      'kylix.yaml': 'backends:\n  state: { provider: postgres, url: "postgres://db/kylix" }\n',
    });
    assert.deepEqual(loadInstallation(join(dir, 'kylix.yaml'), {}).backends.state, {
      provider: 'postgres',
      url: 'postgres://db/kylix',
      schema: 'kylix',
    });
    const fromEnv = loadInstallation(undefined, {
      KYLIX_STATE_URL: 'postgres://db/kylix',
      KYLIX_STATE_SCHEMA: 'shop_prod',
    });
    assert.deepEqual(fromEnv.backends.state, {
      provider: 'postgres',
      url: 'postgres://db/kylix',
      schema: 'shop_prod',
    });
    assert.throws(
      () =>
        loadInstallation(undefined, {
          KYLIX_STATE_URL: 'postgres://db/kylix',
          KYLIX_STATE_SCHEMA: 'Bad-Name',
        }),
      (e: KylixError) => e.causes.some((c) => c.field === 'backends.state.schema'),
    );
  });

  it('names every bad field', () => {
    const dir = writeProject({ 'bad.yaml': '' });
    writeFileSync(
      join(dir, 'bad.yaml'),
      'backends:\n  keyValue: { provider: redis, url: "http://x" }\n  queue: { provider: kafka }\n  extra: 1\n',
    );
    assert.throws(
      () => loadInstallation(join(dir, 'bad.yaml'), {}),
      (e: KylixError) => {
        const fields = e.causes.map((c) => c.field);
        assert.ok(fields.includes('backends.keyValue.url'), fields.join());
        assert.ok(fields.includes('backends.queue.provider'), fields.join());
        assert.ok(fields.includes('backends.extra'), fields.join());
        return true;
      },
    );
  });
});
