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
import { STREAM_WINDOW } from '../src/sandbox/channel.js';

/** The test server: each test says what its next request does. */
let server: ReturnType<typeof createServer>;
let port = 0;
let onRequest: (req: IncomingMessage, res: ServerResponse) => void = () => {};
before(async () => {
  server = createServer((req, res) => onRequest(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

describe('GatewayCall', () => {
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

describe('the exchange against a lying instance', () => {
  /** Serves the next request through a GatewayCall whose instance's channel is `channel`. */
  function serveNext(channel: object, timeoutMs = 30_000): Promise<Invocation> {
    const gate = new FunctionGate(10);
    const admission = new Admission();
    return new Promise((resolve) => {
      const hooks: GatewayHooks = {
        runtime: {
          lend: () => ({
            instance: { id: 'i1', channel } as unknown as Lease['instance'],
            cold: false,
            waitedMs: 0,
            release() {},
          }),
          instanceFailed() {},
        } as unknown as Runtime,
        admission,
        pacer: new RefusalPacer(),
        active: 0,
        onInvocation: resolve,
        onRefused() {},
      };
      const served = {
        target: { limits: { timeoutMs, maxRequestBytes: 64 * 1024 * 1024 } },
        name: 'f',
        gate,
      } as unknown as Served;
      onRequest = (req, res) => {
        admission.enter(gate);
        const share = { revision: 1, revisionKey: 'k' } as TrafficShare;
        new GatewayCall(hooks, req, res, 'ns/f', '/', 'rid', served, share, () => {}).admitted(undefined);
      };
    });
  }

  it('takes no more of an upload than its window, whatever credit the instance grants', async () => {
    type Sink = { credit(n: number): void };
    let sink!: Sink;
    let forwarded = 0;
    const channel = {
      open(s: Sink) {
        sink = s;
        return 1;
      },
      sendHead() {
        // The instance grants 4 GiB at once: an honest one grants what it has read.
        queueMicrotask(() => sink.credit(2 ** 32 - 1));
      },
      send(_type: number, _id: number, chunk?: Uint8Array) {
        forwarded += chunk?.byteLength ?? 0;
      },
      abort() {},
      done() {},
      grant() {},
      // At the time limit the body is held back by the instance (it took no more): it is stopped.
      setFate() {},
      waitingOn() {
        return undefined;
      },
    };
    const record = serveNext(channel);
    const client = request({ port, host: '127.0.0.1', method: 'POST', path: '/' });
    client.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 64; i++) client.write(chunk);
    await sleep(500);
    // The window, and what the socket had read when the gateway paused it (it was 4 MiB before).
    assert.ok(
      forwarded <= STREAM_WINDOW + 128 * 1024,
      `the gateway forwarded ${forwarded} bytes on a ${STREAM_WINDOW}-byte window`,
    );
    client.destroy();
    await record;
  });

  it('cuts a response the instance answers twice, at once rather than at the time limit', async () => {
    type Sink = { response(head: { s: number; h: string[] }, body?: Uint8Array): void };
    let sink!: Sink;
    const channel = {
      open(s: Sink) {
        sink = s;
        return 1;
      },
      sendHead() {
        queueMicrotask(() => {
          sink.response({ s: 200, h: [] });
          sink.response({ s: 200, h: [] }, new Uint8Array(3));
        });
      },
      send() {},
      abort() {},
      done() {},
      grant() {},
    };
    const record = serveNext(channel);
    const began = performance.now();
    const got = await new Promise<string>((resolve) => {
      const client = request({ port, host: '127.0.0.1', path: '/' }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('end'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      });
      client.on('error', () => resolve('cut'));
      client.end();
    });
    await record;
    assert.equal(got, 'cut');
    assert.ok(performance.now() - began < 5000, 'the response stayed open until the time limit');
  });
});
