/**
 * The runtime with a fake sandbox: what it asks the sandbox for (the revision's key and limits, the
 * hooks its instance's calls go to), how it reacts to a crash, and what retiring stops. No process
 * is started.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RevisionTarget, revisionKey } from '../src/resources/serving.js';
import type { InstanceChannel, InstanceHooks } from '../src/runtime/instance-channel.js';
import { Runtime } from '../src/runtime/runtime.js';
import type { Sandbox, SandboxEvents, SandboxInstance } from '../src/runtime/sandbox.js';
import type { BindingCall, InstanceSpec, LogRecord } from '../src/sandbox/protocol.js';

/** A sandbox that starts nothing: it records each start and lets the test crash an instance. */
class FakeSandbox implements Sandbox {
  readonly kind = 'fake';
  readonly started: {
    revision: { key: string; limits: unknown };
    spec: InstanceSpec;
    hooks: InstanceHooks;
  }[] = [];
  readonly stopped: string[] = [];
  constructor(readonly events: SandboxEvents) {}

  async startInstance(
    revision: { key: string; limits: unknown },
    spec: InstanceSpec,
    hooks: InstanceHooks,
  ): Promise<SandboxInstance> {
    this.started.push({ revision, spec, hooks });
    return { id: spec.id, channel: {} as InstanceChannel, startupMs: 2 };
  }

  async stopInstance(id: string): Promise<void> {
    this.stopped.push(id);
  }

  async close(): Promise<void> {}
}

function target(namespace: string, name: string, n: number): RevisionTarget {
  return {
    key: revisionKey(namespace, name, n),
    namespace,
    functionName: name,
    revision: n,
    bundlePath: '/nonexistent.js',
    env: { A: '1' },
    memoryMiB: 64,
    limits: { cpuMs: 250, egressAllow: ['api.example.com'] },
    scaling: { minInstances: 0, maxInstances: 2, targetConcurrency: 1, idleSeconds: 60 },
    bindings: { KV: { keyValue: 'cache' } },
  };
}

function fakeRuntime() {
  const sandboxes = new Map<string, FakeSandbox>();
  const logs: { target: RevisionTarget; record: LogRecord }[] = [];
  const crashes: { target: RevisionTarget; reason: string }[] = [];
  const rpcs: { target: RevisionTarget; call: BindingCall }[] = [];
  const runtime = new Runtime({
    makeSandbox: (namespace, events) => {
      const s = new FakeSandbox(events);
      sandboxes.set(namespace, s);
      return s;
    },
    logSink: (t, record) => logs.push({ target: t, record }),
    onCrash: (t, reason) => crashes.push({ target: t, reason }),
    rpc: async (t, call) => {
      rpcs.push({ target: t, call });
      return 'ok';
    },
  });
  return { runtime, sandboxes, logs, crashes, rpcs };
}

describe('runtime (fake sandbox)', () => {
  it('starts an instance with the revision’s key and limits, in its namespace’s sandbox', async () => {
    const f = fakeRuntime();
    const t = target('team-a', 'api', 3);
    await f.runtime.deploy(t);
    const s = f.sandboxes.get('team-a');
    assert.equal(s?.started.length, 1);
    assert.equal(s?.started[0]?.revision.key, 'team-a/api/3');
    assert.deepEqual(s?.started[0]?.revision.limits, { cpuMs: 250, egressAllow: ['api.example.com'] });
    assert.deepEqual(s?.started[0]?.spec.bindings, { KV: 'keyValue' });
    await f.runtime.close();
  });

  it('binds each instance’s calls and logs to its own revision', async () => {
    const f = fakeRuntime();
    await f.runtime.deploy(target('team-a', 'api', 1));
    await f.runtime.deploy(target('team-b', 'api', 1));
    const a = f.sandboxes.get('team-a')?.started[0]?.hooks;
    const b = f.sandboxes.get('team-b')?.started[0]?.hooks;
    await a?.rpc({ binding: 'KV', op: 'get', args: ['k'] });
    b?.log({ level: 'log', message: 'from b', time: new Date().toISOString() });
    assert.equal(f.rpcs[0]?.target.namespace, 'team-a');
    assert.equal(f.logs[0]?.target.namespace, 'team-b');
    await f.runtime.close();
  });

  it('an instance that crashes is forgotten and reported; the next request starts another', async () => {
    const f = fakeRuntime();
    const t = target('team-a', 'api', 1);
    await f.runtime.deploy(t);
    const s = f.sandboxes.get('team-a') as FakeSandbox;
    const first = s.started[0]?.spec.id as string;
    s.events.exit(first, 'boom');
    assert.equal(f.crashes.length, 1);
    assert.equal(f.crashes[0]?.reason, 'boom');
    const lease = await f.runtime.acquire(t.key);
    assert.notEqual(lease.instance.id, first);
    lease.release();
    await f.runtime.close();
  });

  it('retiring a revision stops its instances and forgets it', async () => {
    const f = fakeRuntime();
    const t = { ...target('team-a', 'api', 1) };
    t.scaling = { ...t.scaling, minInstances: 1 };
    await f.runtime.deploy(t);
    assert.ok(f.runtime.has(t.key));
    await f.runtime.retire(t.key);
    assert.ok(!f.runtime.has(t.key));
    assert.equal(f.sandboxes.get('team-a')?.stopped.length, 1);
    await assert.rejects(f.runtime.acquire(t.key), /not deployed/);
    await f.runtime.close();
  });
});
