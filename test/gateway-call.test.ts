/**
 * GatewayCall, the gateway's one object per routed request, against a fake runtime and channel: the
 * books (admission, the lease, the invocation record, done) close once whatever the request's fate.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admission, FunctionGate } from '../src/gateway/concurrency.js';
import type { Invocation } from '../src/gateway/gateway.js';
import { GatewayCall, type GatewayHooks, type Served } from '../src/gateway/gateway-call.js';
import { RefusalPacer } from '../src/gateway/refusal.js';
import type { TrafficShare } from '../src/gateway/traffic.js';
import type { Lease, Runtime } from '../src/runtime/runtime.js';

describe('GatewayCall', () => {
  let server: ReturnType<typeof createServer>;
  let port = 0;
  let onRequest: (req: IncomingMessage, res: ServerResponse) => void = () => {};

  before(async () => {
    server = createServer((req, res) => onRequest(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('gives the instance back at once when the client went away during its cold start', async () => {
    const log: string[] = [];
    const sink: { response?: (head: unknown, body: Uint8Array) => void } = {};
    const channel = {
      open(s: typeof sink) {
        Object.assign(sink, s);
        return 1;
      },
      sendHead: () => log.push('sent'),
      send() {},
      abort: () => log.push('abort'),
      done() {},
      grant() {},
    };
    let startInstance!: (lease: Lease) => void;
    const admission = new Admission();
    const gate = new FunctionGate(10);
    const invocations: Invocation[] = [];
    const hooks: GatewayHooks = {
      runtime: {
        lend: () => new Promise<Lease>((r) => (startInstance = r)),
        instanceFailed() {},
      } as unknown as Runtime,
      admission,
      pacer: new RefusalPacer(),
      active: 0,
      onInvocation: (i) => invocations.push(i),
      onRefused() {},
    };
    const served = {
      target: { limits: { timeoutMs: 30_000, maxRequestBytes: 1e6 } },
      name: 'f',
      gate,
    } as unknown as Served;
    const done = new Promise<void>((resolve) => {
      onRequest = (req, res) => {
        assert.equal(admission.enter(gate), undefined);
        const share = { revision: 1, revisionKey: 'k' } as TrafficShare;
        new GatewayCall(hooks, req, res, 'ns/f', '/', 'rid', served, share, resolve).admitted(undefined);
      };
    });
    const client = request({ port, host: '127.0.0.1', path: '/' });
    client.on('error', () => {});
    client.end();
    await sleep(100);
    client.destroy();
    await sleep(100);
    let released = false;
    const began = performance.now();
    startInstance({
      instance: { id: 'i1', channel } as unknown as Lease['instance'],
      cold: true,
      waitedMs: 200,
      release: () => {
        released = true;
      },
    });
    await done;
    // Before: nothing ended the call until the function's time limit (30 s here).
    assert.ok(performance.now() - began < 1000, `ended after ${performance.now() - began} ms`);
    assert.ok(released, 'the lease was not given back');
    assert.deepEqual(log, [], 'the request was sent to the instance');
    assert.equal(hooks.active, 0);
    assert.equal(gate.inFlight, 0);
    assert.equal(invocations.length, 1);
    assert.equal(invocations[0]?.status, 499);
  });
});
