/**
 * OpenTelemetry traces as an operator meets them: a node started with OTEL_EXPORTER_OTLP_ENDPOINT
 * exports OTLP/HTTP to a collector (here a tiny server on port 0), and one request makes one tree —
 * the client's trace continued, the function handed a traceparent naming the request's span, and
 * its binding calls and outbound fetches as children (the remote server continuing the trace), a
 * queue delivery linked to its send, and a cron run as a root span of its own.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createQueueProvider } from '../../src/bindings/queue/index.js';
import type { Delivery, QueueProvider } from '../../src/bindings/queue/interface.js';
import { exportersFromEnv } from '../../src/observability/tracing.js';
import { SCHEDULE_STATE } from '../../src/triggers/scheduler.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
}

const ENV = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_SERVICE_NAME'] as const;

describe('tracing', () => {
  let node: TestNode;
  let collector: Server;
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  const saved: Record<string, string | undefined> = {};
  /** A remote server the functions may fetch (127.0.0.2, allowed by the installation). */
  let upstream: Server;
  let upstreamPort = 0;
  const upstreamSaw: (string | undefined)[] = [];

  before(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const doc = JSON.parse(body) as {
            resourceSpans: {
              resource: { attributes: { key: string; value: { stringValue?: string } }[] };
              scopeSpans: { spans: OtlpSpan[] }[];
            }[];
          };
          for (const rs of doc.resourceSpans) {
            for (const a of rs.resource.attributes)
              if (a.key === 'service.name' && a.value.stringValue) services.add(a.value.stringValue);
            for (const ss of rs.scopeSpans) spans.push(...ss.spans);
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    for (const k of ENV) saved[k] = process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '20';
    process.env.OTEL_SERVICE_NAME = 'kylix-test';
    upstream = createServer((req, res) => {
      upstreamSaw.push(req.headers.traceparent as string | undefined);
      res.end('remote');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.2', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
    node = await startNode({
      isolation: { egressAllowCidrs: ['127.0.0.2/32'] },
      consumer: { waitMs: 50 },
    });
  });
  after(async () => {
    await node?.destroy();
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    collector.close();
    upstream?.close();
  });

  const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value;

  it('is off unless an endpoint or an exporter is named', () => {
    assert.deepEqual(exportersFromEnv({}), []);
    assert.deepEqual(exportersFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318' }), ['otlp']);
    assert.deepEqual(exportersFromEnv({ OTEL_TRACES_EXPORTER: 'console' }), ['console']);
    assert.deepEqual(
      exportersFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }),
      [],
    );
    assert.deepEqual(exportersFromEnv({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), []);
  });

  it('exports one tree per request: client trace continued, traceparent to the function, binding calls as children', async () => {
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1',
        'kind: KeyValue',
        'metadata: { name: store }',
        'spec: {}',
        '---',
        functionManifest('traced', './t.ts', ['/traced'], '  bindings:\n    KV: { keyValue: store }'),
      ].join('\n'),
      't.ts': `export default { async fetch(req, env) {
        await env.KV.put('k', 'v');
        await env.KV.get('k');
        return Response.json({ traceparent: req.headers.get('traceparent') });
      } };\n`,
    });
    assert.ok((await apply(node, dir)).ok);
    const clientTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    const res = await fetch(node.url('/traced'), {
      headers: { traceparent: `00-${clientTrace}-${clientSpan}-01` },
    });
    assert.equal(res.status, 200);
    const seen = ((await res.json()) as { traceparent: string }).traceparent;
    const [, traceId, parentId] = seen.split('-');
    assert.equal(traceId, clientTrace, 'the function sees the same trace');

    await eventually(() => spans.filter((s) => s.traceId === clientTrace).length >= 3, 10_000);
    const inTrace = spans.filter((s) => s.traceId === clientTrace);
    const root = inTrace.find((s) => s.name === 'GET default/traced');
    assert.ok(root, `a request span among ${inTrace.map((s) => s.name).join(', ')}`);
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(root.parentSpanId, clientSpan, "the client's span is the parent");
    assert.equal(parentId, root.spanId, "the function's traceparent names the request span");
    assert.deepEqual(attr(root, 'http.response.status_code'), { intValue: 200 });
    assert.deepEqual(attr(root, 'kylix.revision'), { intValue: 1 });
    const bindings = inTrace
      .filter((s) => s.name.startsWith('keyValue.'))
      .map((s) => [s.name, s.parentSpanId, s.kind]);
    assert.deepEqual(bindings.sort(), [
      ['keyValue.get', root.spanId, 3],
      ['keyValue.put', root.spanId, 3],
    ]);
    assert.ok(services.has('kylix-test'), 'OTEL_SERVICE_NAME names the service');
  });

  it('makes each outbound fetch a child span and sends the remote server a traceparent naming it', async () => {
    const dir = writeProject({
      'kylix.yaml': functionManifest('caller', './c.ts', ['/caller'], "  egress:\n    allow: ['127.0.0.2']"),
      'c.ts': `export default { async fetch() {
        const res = await fetch('http://127.0.0.2:${upstreamPort}/remote');
        return new Response(await res.text());
      } };\n`,
    });
    assert.ok((await apply(node, dir)).ok);
    const res = await fetch(node.url('/caller'));
    assert.equal(await res.text(), 'remote');
    const sent = upstreamSaw.at(-1);
    assert.ok(sent, 'the remote server received a traceparent');
    const [, traceId, spanId] = sent.split('-');
    await eventually(() => spans.some((s) => s.spanId === spanId), 10_000);
    const egress = spans.find((s) => s.spanId === spanId) as OtlpSpan;
    assert.equal(egress.name, `GET 127.0.0.2:${upstreamPort}`);
    assert.equal(egress.kind, 3, 'CLIENT');
    assert.equal(egress.traceId, traceId);
    assert.deepEqual(attr(egress, 'http.response.status_code'), { intValue: 200 });
    assert.ok(egress.parentSpanId, 'the fetch has a parent');
    await eventually(() => spans.some((s) => s.spanId === egress.parentSpanId), 10_000);
    const root = spans.find((s) => s.spanId === egress.parentSpanId);
    assert.equal(root?.name, 'GET default/caller', 'the request span is its parent');
  });

  it('links a queue delivery to the span that sent it, and makes a cron run a root span', async () => {
    const dir = writeProject({
      'kylix.yaml': [
        'apiVersion: kylix.dev/v1',
        'kind: Queue',
        'metadata: { name: work }',
        'spec: {}',
        '---',
        'apiVersion: kylix.dev/v1',
        'kind: KeyValue',
        'metadata: { name: seen }',
        'spec: {}',
        '---',
        functionManifest('producer', './p.ts', ['/produce'], '  bindings:\n    Q: { queue: work }'),
        '---',
        functionManifest(
          'consumer',
          './q.ts',
          ['/consumer'],
          '  bindings:\n    KV: { keyValue: seen }\n  triggers:\n    queue: { name: work }\n    schedule: { cron: "0 0 1 1 *" }',
        ),
      ].join('\n'),
      'p.ts': `export default { async fetch(req, env) {
        await env.Q.send({ hello: 1 });
        return new Response('sent');
      } };\n`,
      'q.ts': `export default {
        fetch() { return new Response('consumer'); },
        async queue(batch, env) { await env.KV.put('got', String(batch.messages.length)); },
        async scheduled(event, env) { await env.KV.put('tick', String(event.scheduledTime)); },
      };\n`,
    });
    // A schedule last run years ago: applying it makes up one run at once (a catch-up).
    await node.platform.registry.store.put(
      {
        apiVersion: 'kylix.dev/v1',
        kind: SCHEDULE_STATE,
        metadata: {
          name: 'consumer',
          namespace: 'default',
          uid: 'default/consumer',
          resourceVersion: '',
          generation: 1,
          creationTimestamp: new Date().toISOString(),
        },
        spec: { lastTick: Date.parse('2020-06-01T00:00:00Z') },
      },
      { mustNotExist: true },
    );
    assert.ok((await apply(node, dir)).ok);
    // The catch-up run first (alone: with two activities in flight, a binding call's parent is ambiguous).
    await eventually(() => spans.some((s) => s.name === 'cron default/consumer'), 15_000);
    const cron = spans.find((s) => s.name === 'cron default/consumer') as OtlpSpan;
    assert.ok(!cron.parentSpanId, 'a cron run is a root span');
    assert.deepEqual(attr(cron, 'kylix.cron.catch_up'), { boolValue: true });
    await eventually(
      () => spans.some((s) => s.name === 'keyValue.put' && s.parentSpanId === cron.spanId),
      10_000,
    );

    assert.equal(await (await fetch(node.url('/produce'))).text(), 'sent');

    await eventually(() => spans.some((s) => s.name === 'process default/work'), 15_000);
    const send = spans.find((s) => s.name === 'queue.send') as OtlpSpan;
    const producer = spans.find((s) => s.spanId === send.parentSpanId);
    assert.equal(producer?.name, 'GET default/producer', 'the send is a child of its request');
    const delivery = spans.find((s) => s.name === 'process default/work') as OtlpSpan;
    assert.equal(delivery.kind, 5, 'CONSUMER');
    assert.ok(!delivery.parentSpanId, 'a delivery starts its own trace');
    assert.deepEqual(
      delivery.links?.map((l) => [l.traceId, l.spanId]),
      [[send.traceId, send.spanId]],
      'linked to the span of its send',
    );
    await eventually(
      () => spans.some((s) => s.name === 'keyValue.put' && s.parentSpanId === delivery.spanId),
      10_000,
    );
  });
});

const NATS_URL = process.env.KYLIX_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const natsDown = await reachable(NATS_URL);
if (natsDown) console.log(`# skipping trace context on NATS: ${natsDown}`);

describe('trace context in queue messages', () => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  /** Sends one message with a traceparent and one without; both come back as they were sent. */
  async function roundTrip(queue: QueueProvider, name: string): Promise<Delivery[]> {
    const ref = { namespace: 'default', name };
    await queue.ensure(ref);
    const body = new TextEncoder().encode('{}');
    await queue.send(ref, [{ body, contentType: 'json', traceparent }]);
    await queue.send(ref, [{ body, contentType: 'json' }]);
    const got = await queue.receive(ref, { max: 10, leaseMs: 10_000, waitMs: 2000 });
    await queue.ack(
      ref,
      got.map((d) => d.leaseId),
    );
    return got;
  }

  it('keeps it with the message in the embedded journal, across a restart', async () => {
    const dataDir = tempDir('queue-trace');
    try {
      const first = await createQueueProvider({ provider: 'embedded', dataDir });
      const ref = { namespace: 'default', name: 'kept' };
      await first.ensure(ref);
      await first.send(ref, [{ body: new Uint8Array([1]), contentType: 'bytes', traceparent }]);
      await first.close();
      const again = await createQueueProvider({ provider: 'embedded', dataDir });
      const [d] = await again.receive(ref, { max: 1, leaseMs: 10_000, waitMs: 0 });
      assert.equal(d?.traceparent, traceparent);
      await again.close();
      const fresh = await createQueueProvider({ provider: 'embedded', dataDir });
      const got = await roundTrip(fresh, 'fresh');
      assert.deepEqual(
        got.map((m) => m.traceparent),
        [traceparent, undefined],
      );
      await fresh.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('carries it as a message header on NATS JetStream', { skip: natsDown }, async () => {
    const queue = await createQueueProvider({ provider: 'nats', url: NATS_URL });
    const name = `trace${Date.now().toString(36)}`;
    try {
      const got = await roundTrip(queue, name);
      assert.deepEqual(
        got.map((m) => m.traceparent),
        [traceparent, undefined],
      );
    } finally {
      await queue.purge({ namespace: 'default', name });
      await queue.close();
    }
  });
});
