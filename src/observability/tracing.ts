/**
 * OpenTelemetry traces of a node (the OTel JS SDK, OTLP/HTTP exporter), configured by the standard
 * OTEL_* environment variables and off unless OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER asks for them. Each node has its own
 * tracer provider (nothing is registered globally), so several nodes in one process stay apart.
 *
 * The tree of one request: a SERVER span for the gateway's dispatch (continuing the client's W3C
 * traceparent, if any), a child for the wait for a cold instance, a CLIENT span per binding call
 * and one per outbound fetch (made by the egress proxy, which sends a traceparent naming it to the
 * remote server). The function receives a traceparent naming the request span, so spans it exports
 * join the same trace. A cron run is a root span of its own; a queue batch is a CONSUMER span
 * linked to the span of each message's send (the traceparent travels in the message's metadata).
 *
 * Binding calls and outbound requests carry no request identity (the channel is the revision's),
 * so their parent is the function's activity (request, cron run, queue batch) in flight when there
 * is exactly one — or, for a fetch, the one whose trace the function's own traceparent names.
 */
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';

/** The W3C trace context headers the gateway reads from the client and writes for the function. */
const TRACE_HEADERS = new Set(['traceparent', 'tracestate']);
const w3c = new W3CTraceContextPropagator();

/** What the gateway tells the tracer when a request ends (the fields of its Invocation we use). */
export interface FinishedRequest {
  requestId: string;
  revision: number;
  status: number;
  cold: boolean;
  startupMs: number;
  errorCode?: string;
}

/** An activity's span (request, cron run, queue batch) and what its children need. */
interface Open {
  span: Span;
  ctx: Context;
  startedAt: number;
}

const setter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

/** The traceparent naming a span. */
function traceparentOf(ctx: Context): string | undefined {
  const out: Record<string, string> = {};
  w3c.inject(ctx, out, setter);
  return out.traceparent;
}

/** The span context a traceparent names, if it is a valid one. */
function spanContextOf(traceparent: string | undefined) {
  if (!traceparent) return undefined;
  const ctx = w3c.extract(
    ROOT_CONTEXT,
    { traceparent },
    {
      get: (carrier, key) => carrier[key as 'traceparent'],
      keys: (carrier) => Object.keys(carrier),
    },
  );
  return trace.getSpanContext(ctx);
}

/** The exporters OTEL_TRACES_EXPORTER names ("otlp" when only an endpoint is set); [] means off. */
export function exportersFromEnv(env: NodeJS.ProcessEnv): string[] {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return [];
  const named = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (named.length > 0) return named.includes('none') ? [] : named;
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? ['otlp'] : [];
}

/** See the file comment. */
export class RequestTracing {
  private readonly tracer: Tracer;
  /** Request spans by request id, until the request ends. */
  private readonly byRequest = new Map<string, Open>();
  /** Activities in flight per function ("namespace/name"), to parent binding calls and fetches. */
  private readonly byFunction = new Map<string, Set<Open>>();

  private constructor(private readonly provider: BasicTracerProvider) {
    this.tracer = provider.getTracer('kylix');
  }

  /** Tracing as the OTEL_* variables configure it, or undefined when they ask for none. */
  static fromEnv(version: string, env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => {}) {
    const processors: SpanProcessor[] = [];
    for (const name of exportersFromEnv(env)) {
      let exporter: SpanExporter;
      if (name === 'otlp') exporter = new OTLPTraceExporter();
      else if (name === 'console') exporter = new ConsoleSpanExporter();
      else {
        log(`kylix: OTEL_TRACES_EXPORTER "${name}" is not supported (use otlp, console or none); ignored.`);
        continue;
      }
      // Batched: the request path only queues the finished span (OTEL_BSP_* tune the batches).
      processors.push(new BatchSpanProcessor(exporter));
    }
    if (processors.length === 0) return undefined;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults.
    const resource = resourceFromAttributes({
      [ATTR_SERVICE_NAME]: 'kylix',
      [ATTR_SERVICE_VERSION]: version,
    }).merge(detectResources({ detectors: [envDetector] }));
    return new RequestTracing(new BasicTracerProvider({ resource, spanProcessors: processors }));
  }

  /**
   * 1. Starts the request's span, continuing the client's traceparent when it sent one, and
   * 2. replaces the trace headers the function will see with ones naming this span.
   */
  start(
    requestId: string,
    functionKey: string,
    headers: Record<string, string | string[] | undefined>,
    rawHeaders: string[],
    method: string,
    path: string,
  ): void {
    const parent = w3c.extract(ROOT_CONTEXT, headers, {
      get: (carrier, key) => carrier[key],
      keys: (carrier) => Object.keys(carrier),
    });
    const q = path.indexOf('?');
    const span = this.tracer.startSpan(
      `${method} ${functionKey}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_URL_PATH]: q === -1 ? path : path.slice(0, q),
          'kylix.function': functionKey,
          'kylix.request_id': requestId,
        },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    const out: Record<string, string> = {};
    w3c.inject(ctx, out, setter);
    // The proxy forwards rawHeaders: drop the client's trace headers, add ours.
    for (let i = rawHeaders.length - 2; i >= 0; i -= 2)
      if (TRACE_HEADERS.has(String(rawHeaders[i]).toLowerCase())) rawHeaders.splice(i, 2);
    for (const name of TRACE_HEADERS) delete headers[name];
    for (const [name, value] of Object.entries(out)) {
      rawHeaders.push(name, value);
      headers[name] = value;
    }
    const open = { span, ctx, startedAt: Date.now() };
    this.byRequest.set(requestId, open);
    this.enter(functionKey, open);
  }

  /** Counts an activity in flight for the function. */
  private enter(functionKey: string, open: Open): void {
    let set = this.byFunction.get(functionKey);
    if (!set) {
      set = new Set();
      this.byFunction.set(functionKey, set);
    }
    set.add(open);
  }

  /** The activity is over. */
  private leave(functionKey: string, open: Open): void {
    const set = this.byFunction.get(functionKey);
    set?.delete(open);
    if (set?.size === 0) this.byFunction.delete(functionKey);
  }

  /** Adds what the gateway learnt (revision, cold start, status) to the request's span. */
  finished(i: FinishedRequest): void {
    const open = this.byRequest.get(i.requestId);
    if (!open) return;
    open.span.setAttributes({
      'kylix.revision': i.revision,
      'kylix.cold': i.cold,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: i.status,
    });
    if (i.errorCode) open.span.setAttribute('kylix.error_code', i.errorCode);
    if (i.cold) {
      // The wait is known only once it is over: its span is written with its real times.
      this.tracer
        .startSpan('kylix.cold_start', { kind: SpanKind.INTERNAL, startTime: open.startedAt }, open.ctx)
        .end(open.startedAt + i.startupMs);
    }
  }

  /** 3. Ends the request's span once the response is over. */
  end(requestId: string, functionKey: string, status: number, errorCode: string | undefined): void {
    const open = this.byRequest.get(requestId);
    if (!open) return;
    this.byRequest.delete(requestId);
    this.leave(functionKey, open);
    if (status >= 500 || errorCode) open.span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
    open.span.end();
  }

  /**
   * Runs one binding call in a CLIENT span, parented as the file comment says; with several
   * activities in flight it starts its own trace and says so (kylix.parent_ambiguous). `run` is
   * given the span's traceparent, for a call that carries it on (a queue send).
   */
  async binding<T>(
    namespace: string,
    fn: string,
    kind: string,
    op: string,
    run: (traceparent: string | undefined) => Promise<T>,
  ): Promise<T> {
    const inFlight = this.byFunction.get(`${namespace}/${fn}`);
    const only = inFlight?.size === 1 ? inFlight.values().next().value : undefined;
    const opName = /^[A-Za-z]{1,32}$/.test(op) ? op : 'other';
    const span = this.tracer.startSpan(
      `${kind}.${opName}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'kylix.binding.kind': kind,
          'kylix.binding.op': opName,
          'kylix.function': `${namespace}/${fn}`,
          ...(inFlight && inFlight.size > 1 ? { 'kylix.parent_ambiguous': true } : {}),
        },
      },
      only?.ctx ?? ROOT_CONTEXT,
    );
    try {
      return await run(traceparentOf(trace.setSpan(ROOT_CONTEXT, span)));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: typeof code === 'string' ? code : 'error' });
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Starts the CLIENT span of one outbound request of a revision's function ("ns/fn/rev") and sets
   * the request's traceparent to name it; returns what ends it. The parent is the activity whose
   * trace the function's own traceparent names, else the only activity in flight, else none.
   */
  egress(
    revisionKey: string,
    request: { method: string; url: URL; headers: Record<string, string | string[]> },
  ): (outcome: { status?: number; error?: string }) => void {
    const functionKey = revisionKey.slice(0, revisionKey.lastIndexOf('/'));
    const inFlight = this.byFunction.get(functionKey);
    const sent = request.headers.traceparent;
    const named = spanContextOf(typeof sent === 'string' ? sent : undefined);
    let parent: Open | undefined;
    if (named && inFlight)
      for (const o of inFlight) if (o.span.spanContext().traceId === named.traceId) parent = o;
    if (!parent && inFlight?.size === 1) parent = inFlight.values().next().value;
    const { method, url } = request;
    const span = this.tracer.startSpan(
      `${method} ${url.host}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          'server.address': url.hostname,
          'url.scheme': url.protocol.replace(':', ''),
          [ATTR_URL_PATH]: url.pathname,
          'kylix.function': functionKey,
          ...(!parent && inFlight && inFlight.size > 1 ? { 'kylix.parent_ambiguous': true } : {}),
        },
      },
      parent?.ctx ?? ROOT_CONTEXT,
    );
    // The remote server continues this trace: the function's trace headers give way to ours.
    delete request.headers.tracestate;
    const out: Record<string, string> = {};
    w3c.inject(trace.setSpan(ROOT_CONTEXT, span), out, setter);
    Object.assign(request.headers, out);
    return ({ status, error }) => {
      if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (error !== undefined || (status !== undefined && status >= 500))
        span.setStatus({ code: SpanStatusCode.ERROR, ...(error ? { message: error } : {}) });
      span.end();
    };
  }

  /** Runs one scheduled tick in a root span (a cron run starts its own trace). */
  cron<T>(
    namespace: string,
    fn: string,
    event: { cron: string; scheduledTime: number; catchUp: boolean },
    run: () => Promise<T>,
  ): Promise<T> {
    const span = this.tracer.startSpan(
      `cron ${namespace}/${fn}`,
      {
        kind: SpanKind.INTERNAL,
        root: true,
        attributes: {
          'kylix.function': `${namespace}/${fn}`,
          'kylix.cron': event.cron,
          'kylix.cron.scheduled_time': new Date(event.scheduledTime).toISOString(),
          'kylix.cron.catch_up': event.catchUp,
        },
      },
      ROOT_CONTEXT,
    );
    return this.activity(`${namespace}/${fn}`, span, run);
  }

  /**
   * Runs one queue batch in a CONSUMER span of its own trace, linked to the span that sent each
   * message (per the OpenTelemetry messaging conventions for batches).
   */
  queue<T>(
    namespace: string,
    fn: string,
    queue: string,
    traceparents: (string | undefined)[],
    run: () => Promise<T>,
  ): Promise<T> {
    const links = [];
    for (const tp of traceparents) {
      const context = spanContextOf(tp);
      if (context) links.push({ context });
    }
    const span = this.tracer.startSpan(
      `process ${namespace}/${queue}`,
      {
        kind: SpanKind.CONSUMER,
        root: true,
        links,
        attributes: {
          'kylix.function': `${namespace}/${fn}`,
          'messaging.system': 'kylix',
          'messaging.operation.type': 'process',
          'messaging.destination.name': queue,
          'messaging.batch.message_count': traceparents.length,
        },
      },
      ROOT_CONTEXT,
    );
    return this.activity(`${namespace}/${fn}`, span, run);
  }

  /** Runs `run` as an activity of the function in `span`, and ends the span with its outcome. */
  private async activity<T>(functionKey: string, span: Span, run: () => Promise<T>): Promise<T> {
    const open = { span, ctx: trace.setSpan(ROOT_CONTEXT, span), startedAt: Date.now() };
    this.enter(functionKey, open);
    try {
      return await run();
    } catch (err) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: err instanceof Error ? err.message : String(err),
      });
      throw err;
    } finally {
      this.leave(functionKey, open);
      span.end();
    }
  }

  /** Exports what is still batched and stops. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
