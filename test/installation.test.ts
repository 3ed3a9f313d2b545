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
      ['embedded', 'embedded', 'embedded', 'embedded'],
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
