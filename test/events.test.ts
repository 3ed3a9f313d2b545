/**
 * Events as Kubernetes' recorder keeps them: a repeat of an object's newest event counts it up
 * instead of adding another (a node restart must not double every Function's events), and only
 * the newest few per object are kept.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { eventsFor, recordEvent } from '../src/control-plane/events.js';
import { Registry } from '../src/control-plane/registry.js';
import { SecretBox } from '../src/control-plane/secrets.js';
import { openEmbeddedStore } from '../src/control-plane/store/embedded.js';
import type { KObject } from '../src/resources/meta.js';
import { tempDir } from './helpers/temp-dir.js';

describe('events', () => {
  it('counts up a repeated event, adds a different one, and keeps the newest 20', async () => {
    const dir = tempDir('events');
    const registry = new Registry(
      await openEmbeddedStore(join(dir, 'state')),
      SecretBox.open(join(dir, 'key')),
    );
    const { object: kv } = await registry.write(
      'shop',
      { apiVersion: 'kylix.dev/v1', kind: 'KeyValue', metadata: { name: 'sessions' }, spec: {} },
      'create',
    );
    const fields = (e: KObject) => {
      const { reason, message, count } = e as KObject & { reason: string; message: string; count: number };
      return { reason, message, count };
    };
    await recordEvent(registry, kv, 'Normal', 'Ready', 'Backend ready');
    await recordEvent(registry, kv, 'Normal', 'Ready', 'Backend ready');
    await recordEvent(registry, kv, 'Normal', 'Ready', 'Backend ready');
    let events = await eventsFor(registry, 'KeyValue', 'shop', 'sessions');
    assert.deepEqual(events.map(fields), [{ reason: 'Ready', message: 'Backend ready', count: 3 }]);
    const [only] = events as (KObject & { firstTimestamp: string; lastTimestamp: string })[];
    assert.ok(only!.lastTimestamp >= only!.firstTimestamp);

    await recordEvent(registry, kv, 'Warning', 'BackendFailed', 'down');
    await recordEvent(registry, kv, 'Normal', 'Ready', 'Backend ready');
    events = await eventsFor(registry, 'KeyValue', 'shop', 'sessions');
    assert.deepEqual(
      events.map((e) => fields(e).count),
      [3, 1, 1],
      'only a repeat of the newest event counts up',
    );
    for (let i = 0; i < 25; i++) await recordEvent(registry, kv, 'Normal', 'Step', `step ${i}`);
    events = await eventsFor(registry, 'KeyValue', 'shop', 'sessions');
    assert.equal(events.length, 20);
    assert.equal(fields(events.at(-1)!).message, 'step 24');
  });
});
