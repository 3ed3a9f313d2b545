/**
 * What an instance answers, attacked: a sandbox process that answers a request or an event with
 * more than the stream's credit (a body inline with its head, an event answer streamed without end)
 * must not make the supervisor hold it; a queue() handler whose decisions are not what the queue
 * can act on (a retry delay past the limit or not a number, an error text of megabytes) must not
 * park its messages for good or flood its log. Through channels the test drives as a lying sandbox would, and
 * through a real node with bubblewrap on (where installed) and off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { invokeEvent, MAX_EVENT_ANSWER_BYTES } from '../../src/runtime/deliver-event.js';
import { InstanceChannel, type StreamSink } from '../../src/runtime/instance-channel.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { F, FrameReader, frame, headFrame, INLINE_BODY_BYTES } from '../../src/sandbox/channel.js';
import { batchOutcome } from '../../src/triggers/event-answer.js';
import { eventually } from '../helpers/eventually.js';
import { apply, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { socketPair } from '../helpers/socket-pair.js';

/** A channel whose other end the test writes as a lying sandbox process would. */
async function lyingChannel() {
  const pair = await socketPair();
  const broken: string[] = [];
  const channel = new InstanceChannel(pair.ours, { rpc: async () => 'ok', log: () => undefined }, (reason) =>
    broken.push(reason),
  );
  /** Resolves when the supervisor has ended the channel, or after 5 s (it held it open). */
  const closed = new Promise<void>((r) => {
    pair.theirs.once('close', () => r());
    setTimeout(r, 5000).unref();
  });
  return { ...pair, channel, broken, closed };
}

/** A sink that records the inline bodies it is given. */
function recordingSink(bodies: Uint8Array[]): StreamSink {
  const nothing = () => undefined;
  return {
    response: (_head, body) => void (body && bodies.push(body)),
    body: nothing,
    end: nothing,
    threw: nothing,
    reset: nothing,
    credit: nothing,
    closed: nothing,
  };
}

describe('hostile: a sandbox process that answers past its credit', () => {
  it('was a hole, now held: a response body inline with its head, past the credit, ends the channel', async () => {
    const c = await lyingChannel();
    const bodies: Uint8Array[] = [];
    const honest = c.channel.open(recordingSink(bodies));
    c.theirs.write(headFrame(F.RESPONSE, honest, { s: 200, h: [] }, new Uint8Array(INLINE_BODY_BYTES)));
    await eventually(() => bodies.length === 1, 5000);
    assert.equal(c.broken.length, 0, 'an honest inline body is taken');
    // 32 MiB in one RESPONSE frame: no flow control would have held it, for a client reading nothing.
    const lying = c.channel.open(recordingSink(bodies));
    c.theirs.write(headFrame(F.RESPONSE, lying, { s: 200, h: [] }, new Uint8Array(32 * 2 ** 20)));
    await c.closed;
    assert.match(c.broken[0] ?? '', /past the credit granted/);
    assert.equal(bodies.length, 1, 'the lying body reached no one');
    c.done();
  });

  it('was a hole, now held: an event answer streamed without end is cut at its bound, not kept', async () => {
    const c = await lyingChannel();
    let failed = 0;
    const runtime = {
      acquire: async () => ({ instance: { id: 'i', channel: c.channel }, release: () => undefined }),
      instanceFailed: () => failed++,
    } as unknown as Runtime;
    // The lying process answers the event with a JSON text of 4 MiB, streamed in 64 KiB chunks
    // without waiting for credit (the supervisor used to grant each chunk back as it took it).
    const reader = new FrameReader((type, stream) => {
      if (type !== F.EVENT) return;
      c.theirs.write(headFrame(F.RESPONSE_HEAD, stream, { s: 200, h: [] }));
      const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
      c.theirs.write(frame(F.BODY, stream, new TextEncoder().encode('{"ok":false,"error":"')));
      for (let sent = 0; sent < 4 * MAX_EVENT_ANSWER_BYTES; sent += chunk.byteLength)
        c.theirs.write(frame(F.BODY, stream, chunk));
      c.theirs.write(frame(F.BODY, stream, new TextEncoder().encode('"}')));
      c.theirs.write(frame(F.END, stream));
    });
    c.theirs.on('data', (chunk: Uint8Array) => reader.push(chunk));
    await assert.rejects(
      invokeEvent(runtime, 'ns/fn/1', 'scheduled', { cron: '* * * * *' }, 5000),
      /the instance stopped while handling the scheduled event/,
    );
    assert.match(c.broken[0] ?? '', /past the credit granted/);
    assert.equal(failed, 1);
    c.done();
  });

  it('HELD: a queue outcome is checked before the queue acts on it', () => {
    const retry = (delaySeconds: unknown) => ({
      acked: [],
      retried: [{ leaseId: 'l', delaySeconds }],
      failed: false,
    });
    for (const bad of ['soon', {}, -1, 1e300, null])
      assert.throws(() => batchOutcome(retry(bad)), /retry delay is not a number of seconds from 0 to 43200/);
    for (const bad of [
      null,
      [],
      'x',
      { acked: 'l', retried: [], failed: false },
      { acked: [], retried: [], failed: 1 },
    ])
      assert.throws(() => batchOutcome(bad), /not an outcome/);
    const long = batchOutcome({ acked: ['a'], retried: [], failed: true, error: 'e'.repeat(2 ** 20) });
    assert.ok((long.error?.length ?? 0) < 9 * 1024);
    assert.deepEqual(batchOutcome(retry(30)).retried, [{ leaseId: 'l', delaySeconds: 30 }]);
  });
});

const CONSUMER = `
export default {
  async fetch(request, env) {
    await env.Q.send('poison');
    await env.Q.send('late', { delaySeconds: 1 });
    return new Response('sent');
  },
  async queue(batch) {
    for (const m of batch.messages) {
      console.log('GOT ' + m.body + ' attempt ' + m.attempts);
      // A delay past the 12-hour limit (Workers refuses it): the message was parked for 31 years.
      if (m.body === 'poison' && m.attempts === 1) m.retry({ delaySeconds: 1e9 });
      // An error of 16 MB: it went whole into the function's log.
      else if (m.body === 'poison' && m.attempts === 2) throw new Error('E'.repeat(16 * 2 ** 20));
      else m.ack();
    }
  },
};`;

for (const bubblewrap of ['auto', 'off'] as const) {
  describe(`hostile: queue() decisions the queue cannot act on (bubblewrap ${bubblewrap})`, () => {
    let node: TestNode;
    before(async () => {
      node = await startNode({
        isolation: { bubblewrap },
        consumer: { waitMs: 100, backoffBaseSeconds: 0.2, backoffMaxSeconds: 0.5 },
      });
      await apply(
        node,
        writeProject({
          'kylix.yaml': [
            'apiVersion: kylix.dev/v1\nkind: Queue\nmetadata:\n  name: q\nspec: {}',
            'apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: consumer\nspec:\n  source: ./f.js\n  routes:\n    - path: /consumer\n  bindings:\n    Q:\n      queue: q\n  triggers:\n    queue: { name: q, batchSize: 1, maxRetries: 5 }\n',
          ].join('\n---\n'),
          'f.js': CONSUMER,
        }),
      );
    });
    after(() => node.destroy());

    it('was a hole, now held: a retry delay past the limit throws where it is asked, and an error of megabytes is cut', async () => {
      const res = await fetch(node.url('/consumer'), { method: 'POST' });
      assert.equal(await res.text(), 'sent');
      const log = () => node.platform.logs.tail('default', 'consumer', 10_000).map((e) => e.message);
      // The poison comes back (the handler threw, so it is retried with backoff), and again after its 16 MB error.
      await eventually(
        () =>
          log().some((m) => /GOT late attempt 1/.test(m)) &&
          log().some((m) => /GOT poison attempt 3/.test(m)),
        20_000,
      );
      const all = log().join('\n');
      assert.match(
        all,
        /retry\(\{ delaySeconds \}\) takes a number of seconds from 0 to 43200, not 1000000000/,
      );
      assert.ok(all.length < 2 * 2 ** 20, `the log holds ${all.length} characters`);
    });
  });
}
