/**
 * The node's log of its backends' outages: one warning when a backend starts failing binding
 * calls and its health fails too, one line when its health says it is back, and nothing for calls
 * that fail otherwise or while the backend is healthy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendOutages } from '../src/bindings/outages.js';
import { healthOf, type Provider } from '../src/bindings/provider.js';
import { KylixError } from '../src/errors.js';

describe('BackendOutages', () => {
  it('logs an outage once, counts the calls it failed, and logs the recovery its health reports', async () => {
    let up = false;
    const provider = {
      name: 'redis',
      health: async () => ({ ok: up, message: up ? 'ok' : 'down' }),
    } as unknown as Provider;
    const lines: { message: string; level: string; fields: Record<string, unknown> }[] = [];
    const outages = new BackendOutages(
      (kind) => (kind === 'keyValue' ? Promise.resolve(provider) : undefined),
      (message, level, fields) => lines.push({ message, level, fields }),
      20,
    );
    const down = () =>
      Promise.reject(
        new KylixError('ERR_BACKEND_UNAVAILABLE', 'Redis at 127.0.0.1:6379 failed: connect ECONNREFUSED.'),
      );
    try {
      for (let i = 0; i < 3; i++) await assert.rejects(outages.watch('keyValue', down()), /ECONNREFUSED/);
      // A call that fails for its own reasons says nothing about the backend.
      await assert.rejects(
        outages.watch('keyValue', Promise.reject(new KylixError('ERR_BINDING_BAD_ARGUMENTS', 'bad key'))),
      );
      assert.equal(await outages.watch('keyValue', Promise.resolve('v')), 'v');
      await new Promise((r) => setImmediate(r));
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.level, 'warn');
      assert.match(
        lines[0]?.message ?? '',
        /^keyValue backend unavailable: Redis at 127\.0\.0\.1:6379 failed/,
      );
      assert.deepEqual(outages.downKinds, ['keyValue']);
      // Still down at the next checks: nothing more is logged.
      await new Promise((r) => setTimeout(r, 70));
      assert.equal(lines.length, 1);
      up = true;
      await new Promise((r) => setTimeout(r, 70));
      assert.equal(lines.length, 2);
      assert.equal(lines[1]?.level, 'info');
      assert.match(
        lines[1]?.message ?? '',
        /^keyValue backend available again after [\d.]+ s; 3 binding call\(s\) failed/,
      );
      assert.deepEqual(outages.downKinds, []);
      // A new outage is a new line.
      up = false;
      await assert.rejects(outages.watch('keyValue', down()));
      await new Promise((r) => setImmediate(r));
      assert.equal(lines.length, 3);
    } finally {
      outages.close();
    }
  });

  it('says nothing of a failed call while its backend is healthy, or of a kind with no provider', async () => {
    // One tenant's call can fail with ERR_BACKEND_UNAVAILABLE on its own (an argument the engine
    // cannot take, its own session ended): that is not an outage of a backend everyone shares.
    const healthy = {
      name: 'embedded',
      health: async () => ({ ok: true, message: 'ok' }),
    } as unknown as Provider;
    const lines: string[] = [];
    const outages = new BackendOutages(
      (kind) => (kind === 'database' ? Promise.resolve(healthy) : undefined),
      (message) => lines.push(message),
      20,
    );
    const failing = () =>
      Promise.reject(
        new KylixError('ERR_BACKEND_UNAVAILABLE', 'The database engine failed: Invalid time value'),
      );
    try {
      for (const kind of ['database', 'database', 'unknown'])
        await assert.rejects(outages.watch(kind, failing()), /Invalid time value/);
      await new Promise((r) => setTimeout(r, 70));
      assert.deepEqual(lines, []);
      assert.deepEqual(outages.downKinds, []);
    } finally {
      outages.close();
    }
  });

  it('takes a backend whose health check does not answer (a frozen server) as unhealthy', async () => {
    const frozen = { name: 'postgres', health: () => new Promise(() => {}) } as unknown as Provider;
    const health = await healthOf(frozen, 30);
    assert.equal(health.ok, false);
    assert.match(health.message, /did not answer its health check within 0\.03 s/);
    const broken = {
      name: 'x',
      health: async () => {
        throw new Error('boom');
      },
    } as unknown as Provider;
    assert.deepEqual(await healthOf(broken, 30), { ok: false, message: 'boom' });
    assert.deepEqual(await healthOf(Promise.reject(new Error('cannot open')), 30), {
      ok: false,
      message: 'cannot open',
    });
  });
});
