/**
 * Admission: per-function limits with a bounded wait queue, the node's limit, and the refusals
 * they answer (code, status, Retry-After, request id), with an injected clock; the refusal pacer
 * on a real server.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Admission, FunctionGate } from '../src/gateway/concurrency.js';
import { RefusalPacer } from '../src/gateway/refusal.js';

function clocked(capacity = 10_000) {
  const clock = { t: 1000 };
  return { clock, admission: new Admission(capacity, () => clock.t) };
}

describe('admission', () => {
  it('admits up to the limit, queues a bounded few, and refuses the rest with 429', () => {
    const { admission } = clocked();
    const gate = new FunctionGate(4);
    const verdicts = Array.from({ length: 20 }, () => admission.enter(gate));
    assert.equal(verdicts.filter((v) => v === undefined).length, 4);
    const queued = verdicts.filter((v) => v instanceof Promise);
    assert.equal(queued.length, gate.queueCapacity);
    assert.ok(gate.queueCapacity >= 1 && gate.queueCapacity <= 8);
    assert.equal(verdicts.filter((v) => v === 'ERR_TOO_MANY_REQUESTS').length, 20 - 4 - queued.length);
    admission.close();
  });

  it('hands a freed slot to the oldest waiter', async () => {
    const { admission } = clocked();
    const gate = new FunctionGate(1);
    assert.equal(admission.enter(gate), undefined);
    const first = admission.enter(gate) as Promise<unknown>;
    const second = admission.enter(gate) as Promise<unknown>;
    admission.leave(gate, 5);
    assert.equal(await first, undefined);
    assert.equal(gate.inFlight, 1);
    assert.equal(gate.queued, 1);
    admission.leave(gate, 5);
    assert.equal(await second, undefined);
    admission.leave(gate, 5);
    assert.equal(gate.inFlight, 0);
    assert.equal(admission.inFlight, 0);
  });

  it('refuses a waiter with 429 once it waited its few ms, never admitting it late', async () => {
    const { clock, admission } = clocked();
    const gate = new FunctionGate(1);
    assert.equal(admission.enter(gate), undefined);
    const waiting = admission.enter(gate) as Promise<unknown>;
    clock.t += gate.maxWaitMs + 1;
    admission.leave(gate, 5);
    assert.equal(await waiting, 'ERR_TOO_MANY_REQUESTS');
    assert.equal(gate.inFlight, 0);
    assert.ok(gate.maxWaitMs <= 100, 'the wait is a few ms of work, not seconds');
  });

  it('refuses with 503 ERR_OVERLOADED when the node is full, whichever function asks', () => {
    const { admission } = clocked(3);
    const a = new FunctionGate(1000);
    const b = new FunctionGate(1000);
    assert.equal(admission.enter(a), undefined);
    assert.equal(admission.enter(a), undefined);
    assert.equal(admission.enter(b), undefined);
    assert.equal(admission.enter(b), 'ERR_OVERLOADED');
    admission.leave(a, 1);
    assert.equal(admission.enter(b), undefined);
  });

  it('keeps spec.limits.maxConcurrency as a hard cap, whatever the adaptive limit learns', () => {
    const { clock, admission } = clocked();
    const gate = new FunctionGate(3);
    for (let i = 0; i < 5000; i++) {
      clock.t += 1;
      if (admission.enter(gate) === undefined) admission.leave(gate, 1);
    }
    assert.ok(gate.admitLimit <= 3);
    const verdicts = Array.from({ length: 3 + gate.queueCapacity + 1 }, () => admission.enter(gate));
    assert.equal(verdicts.filter((v) => v === undefined).length, 3);
    assert.equal(verdicts.at(-1), 'ERR_TOO_MANY_REQUESTS');
    admission.close();
  });
});

describe('namespaces sharing a node', () => {
  it('keeps one namespace to its share while the node serves another, and lets it have all when alone', () => {
    const { admission } = clocked(10);
    const attacker = admission.joinNamespace('attacker');
    const slow = new FunctionGate(1000, attacker);
    const verdicts = Array.from({ length: 10 }, () => admission.enter(slow));
    // Alone on the node: the whole node.
    assert.equal(verdicts.filter((v) => v === undefined).length, 10);
    for (let i = 0; i < 10; i++) admission.leave(slow, undefined);
    // With a second namespace served: half of the node's limit, and the rest stays free for it.
    const victim = new FunctionGate(1000, admission.joinNamespace('victim'));
    const held = Array.from({ length: 10 }, () => admission.enter(slow));
    assert.equal(held.filter((v) => v === undefined).length, 5);
    assert.equal(held.at(-1), 'ERR_NAMESPACE_LIMIT');
    for (let i = 0; i < 5; i++) assert.equal(admission.enter(victim), undefined);
    // The attacker's end frees the attacker's part.
    admission.leave(slow, undefined);
    assert.equal(admission.enter(slow), undefined);
    // When the victim's functions are gone, the attacker is alone again.
    admission.leaveNamespace('victim');
    for (let i = 0; i < 5; i++) admission.leave(victim, undefined);
    assert.equal(admission.enter(slow), undefined);
    admission.close();
  });

  it("tells the node's limit how slow a request was for its own function, not in ms", () => {
    const sleeper = new FunctionGate(100);
    const quick = new FunctionGate(100);
    // A function whose requests take a minute is at its usual latency: nothing to learn.
    for (let t = 0; t < 100; t++) assert.equal(sleeper.latencyRatio(60_000, t * 1000), 1);
    // A 1 ms function that became 10 times slower is: at once, and for a while.
    for (let t = 0; t < 100; t++) quick.latencyRatio(1, t);
    // At most MAX_LATENCY_RATIO (4): one request never reads as a node a thousand times slower.
    assert.equal(quick.latencyRatio(10, 100), 4);
    assert.ok(quick.latencyRatio(10, 1100) > 3);
    // It follows a lasting change within its rise time, and a fall at once.
    assert.ok(quick.latencyRatio(10, 40_000) < 1.5);
    assert.equal(quick.latencyRatio(1, 40_001), 1);
  });
});

describe('refusals', () => {
  it('answer with the code, its status, Retry-After and the request id, and pace a client that keeps asking', async () => {
    // One refusal per 50 ms tick answered at full speed; past that the connection is read later.
    const pacer = new RefusalPacer(20);
    let n = 0;
    const server = createServer((_req, res) => {
      n++;
      pacer.refuse(res, n % 2 ? 'ERR_TOO_MANY_REQUESTS' : 'ERR_OVERLOADED', 'slow', `req-${n}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const first = await fetch(url);
      assert.equal(first.status, 429);
      assert.equal(first.headers.get('retry-after'), '1');
      assert.equal(first.headers.get('kylix-request-id'), 'req-1');
      const body = (await first.json()) as { error: { code: string; message: string; requestId: string } };
      assert.equal(body.error.code, 'ERR_TOO_MANY_REQUESTS');
      assert.equal(body.error.requestId, 'req-1');
      assert.match(body.error.message, /slow .*Retry-After/);
      const second = await fetch(url);
      assert.equal(second.status, 503);
      assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'ERR_OVERLOADED');
      // Past the budget, connections are paused for a while but always answered in the end.
      const more = await Promise.all(Array.from({ length: 6 }, () => fetch(url).then((r) => r.status)));
      assert.ok(more.every((s) => s === 429 || s === 503));
    } finally {
      pacer.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
