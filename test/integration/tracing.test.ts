/**
 * OpenTelemetry traces as an operator meets them: a node started with OTEL_EXPORTER_OTLP_ENDPOINT
 * exports OTLP/HTTP to a collector (here a tiny server on port 0), and one request makes one tree —
 * the client's trace continued, the function handed a traceparent naming the request's span, and
 * its binding calls as children.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportersFromEnv } from '../../src/observability/tracing.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

const ENV = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_SERVICE_NAME'] as const;

describe('tracing', () => {
  let node: TestNode;
  let collector: Server;
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  const saved: Record<string, string | undefined> = {};

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
    node = await startNode();
  });
  after(async () => {
    await node?.destroy();
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    collector.close();
  });

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
    const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value;
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
});
