/**
 * A node's Prometheus metrics (prom-client), one registry per node so that several nodes in one
 * process (tests, a fleet on a laptop) never mix their figures. Labels are bounded: namespace,
 * function, revision, status class, error code, binding kind and operation, API verb and kind —
 * never a request id or a path. The request path only increments counters and observes
 * histograms on child metrics cached per (function, revision); gauges that describe state
 * (instances, in flight, queue depth) are read when Prometheus scrapes, not kept up to date.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { KylixError } from '../errors.js';
import type { Invocation } from '../gateway/gateway-call.js';
import { LOOP_LAG_METRICS, registerLoopLag } from './loop-lag.js';
import { type MetricsSources, registerScrapeGauges } from './scrape-gauges.js';
import {
  type CounterSeries,
  type HistogramSeries,
  SeriesCounter,
  SeriesHistogram,
} from './series-metrics.js';

export type { MetricsSources, QueueGaugeSource, RevisionGaugeSource } from './scrape-gauges.js';

/** One finished request as the gateway reports it (the fields of the gateway's Invocation we use). */
export type RequestRecord = Pick<
  Invocation,
  'functionKey' | 'revision' | 'status' | 'durationMs' | 'instanceMs' | 'cold' | 'startupMs' | 'errorCode'
>;

/** Which limit each error code reports as breached (the `kind` label of kylix_limit_breaches_total). */
const LIMIT_KIND: Record<string, string> = {
  ERR_CPU_LIMIT: 'cpu',
  ERR_MEMORY_LIMIT: 'memory',
  ERR_TIMEOUT: 'timeout',
  ERR_BODY_TOO_LARGE: 'body',
};

/** Errors the broker raises before a provider runs: the operation name may be anything the guest sent. */
const REFUSED_BEFORE_PROVIDER = new Set(['ERR_BINDING_DENIED', 'ERR_BINDING_BAD_ARGUMENTS']);

/** prom-client default gauges whose names end in `_total` (see the constructor). */
const MISNAMED_DEFAULT_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Request latency buckets (seconds): a hello-world answers in ~1 ms, a slow function in tens of s. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Cold-start wait buckets (seconds): an instance starts in tens to hundreds of ms. */
const COLD_START_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Binding call and API latency buckets (seconds). */
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The child metrics of one revision, made once so a request creates no label objects. */
interface RevisionChildren {
  functionKey: string;
  revisionNumber: number;
  namespace: string;
  fn: string;
  revision: string;
  duration: HistogramSeries;
  instanceDuration: HistogramSeries;
  coldStarts: CounterSeries;
  coldWait: HistogramSeries;
  /** Request counters by code class + error code ("2xx", "5xxERR_TIMEOUT"). */
  outcomes: Map<string, CounterSeries>;
}

/** A binding call's series, found once for a run of the same call. */
interface BindingMeter {
  namespace: string;
  fn: string;
  kind: string;
  op: string;
  calls: CounterSeries;
  duration: HistogramSeries;
}

/** The status class label: "2xx"… or "other" for anything outside 100–599. */
function codeClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** See the file comment. */
export class PlatformMetrics {
  /** The registry /metrics renders. */
  readonly registry = new Registry();
  private readonly revisions = new Map<string, RevisionChildren>();
  private lastChildren?: RevisionChildren;
  private lastBindingMeter?: BindingMeter;
  /** Binding operations seen reaching a provider: only those become `op` labels. */
  private readonly knownOps = new Set<string>();

  // The five metrics every request touches are series-metrics.ts's (no label hashing per request).
  private readonly requests = new SeriesCounter(
    'kylix_requests_total',
    'Requests a function served, by status class and platform error code ("" when the function answered).',
    ['namespace', 'function', 'revision', 'code_class', 'error_code'],
    this.registry,
  );
  private readonly duration = new SeriesHistogram(
    'kylix_request_duration_seconds',
    'Time from the gateway admitting a request to the end of its response, as the gateway sees it.',
    ['namespace', 'function', 'revision'],
    DURATION_BUCKETS,
    this.registry,
  );
  private readonly instanceDuration = new SeriesHistogram(
    'kylix_function_duration_seconds',
    "Time from handing a request to its instance to the end of its response: the function's own share, without admission queueing or a cold start.",
    ['namespace', 'function', 'revision'],
    DURATION_BUCKETS,
    this.registry,
  );
  private readonly coldStarts = new SeriesCounter(
    'kylix_cold_starts_total',
    'Requests that waited for a new instance to start.',
    ['namespace', 'function', 'revision'],
    this.registry,
  );
  private readonly coldWait = new SeriesHistogram(
    'kylix_cold_start_wait_seconds',
    'How long a cold request waited for its instance to start.',
    ['namespace', 'function', 'revision'],
    COLD_START_BUCKETS,
    this.registry,
  );
  private readonly limitBreaches = new Counter({
    name: 'kylix_limit_breaches_total',
    help: 'Requests stopped by a limit, by kind: cpu, memory, timeout, body.',
    labelNames: ['namespace', 'function', 'revision', 'kind'],
    registers: [this.registry],
  });
  // Binding calls, as many as a function makes: series metrics too.
  private readonly bindingCalls = new SeriesCounter(
    'kylix_binding_calls_total',
    'Binding calls from functions, by binding kind and operation.',
    ['namespace', 'function', 'kind', 'op'],
    this.registry,
  );
  private readonly bindingErrors = new SeriesCounter(
    'kylix_binding_errors_total',
    'Binding calls that failed, by kind, operation and error code.',
    ['namespace', 'function', 'kind', 'op', 'error_code'],
    this.registry,
  );
  private readonly bindingDuration = new SeriesHistogram(
    'kylix_binding_call_duration_seconds',
    'Binding call latency in the supervisor (broker checks plus the provider), by kind and operation.',
    ['kind', 'op'],
    CALL_BUCKETS,
    this.registry,
  );
  private readonly cronFires = new Counter({
    name: 'kylix_cron_fires_total',
    help: 'Scheduled ticks fired into a function, by result (ok, error).',
    labelNames: ['namespace', 'function', 'result'],
    registers: [this.registry],
  });
  private readonly queueDeliveries = new Counter({
    name: 'kylix_queue_deliveries_total',
    help: 'Messages delivered to a consumer function, by what became of them: acked, retried, dead_lettered, dropped.',
    labelNames: ['namespace', 'queue', 'function', 'result'],
    registers: [this.registry],
  });
  private readonly apiRequests = new Counter({
    name: 'kylix_api_requests_total',
    help: 'Control API requests, by verb, resource kind and HTTP status code.',
    labelNames: ['verb', 'kind', 'code'],
    registers: [this.registry],
  });
  private readonly apiDuration = new Histogram({
    name: 'kylix_api_request_duration_seconds',
    help: 'Control API request latency (a watch or a followed log counts until its headers are sent).',
    labelNames: ['verb', 'kind'],
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });

  private readonly cronMisses = new Counter({
    name: 'kylix_cron_misses_total',
    help: 'Scheduled ticks missed, by reason: skipped (not run: during downtime or a stall, beyond the one catch-up run) or late (run, but past the lateness threshold).',
    labelNames: ['namespace', 'function', 'reason'],
    registers: [this.registry],
  });
  private readonly watchClients = new Gauge({
    name: 'kylix_api_watch_clients',
    help: 'Watch streams open on the control API, by resource kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly reconcileDuration = new Histogram({
    name: 'kylix_reconcile_duration_seconds',
    help: 'Time one reconcile of one object took, by controller (function, secret, resource).',
    labelNames: ['controller'],
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });
  private readonly reconcileFailures = new Counter({
    name: 'kylix_reconcile_failures_total',
    help: 'Reconciles that failed (and were queued again with backoff), by controller.',
    labelNames: ['controller'],
    registers: [this.registry],
  });
  /** Refusal counters by "function/revision/code", made once each (a flood of refusals makes no labels). */
  private readonly refusals = new Map<string, CounterSeries>();

  constructor(sources: MetricsSources = {}) {
    // prom-client's lag gauges sample on a 10 ms timer even while the node is idle; ours do not
    // (loop-lag.ts). Its sampler gets the longest period a timer takes (24.8 days: one wake-up in
    // that long), and its gauges make way for ours.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 2 ** 31 - 1 });
    for (const name of LOOP_LAG_METRICS) this.registry.removeSingleMetric(name);
    // prom-client's nodejs_active_{handles,requests,resources}_total are gauges named like counters:
    // `promtool check metrics` fails on them (exit 3), and Prometheus users lint scrapes in CI.
    // Each is the sum of the same gauge without `_total` (by type), so nothing is lost.
    for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    registerLoopLag(this.registry);
    registerScrapeGauges(this.registry, sources);
  }

  /** Records one finished request (the gateway's per-invocation callback). */
  request(i: RequestRecord): void {
    const r = this.children(i.functionKey, i.revision);
    const outcome = i.errorCode ? `${codeClass(i.status)}${i.errorCode}` : codeClass(i.status);
    let counter = r.outcomes.get(outcome);
    if (!counter) {
      counter = this.requests.series(r.namespace, r.fn, r.revision, codeClass(i.status), i.errorCode ?? '');
      r.outcomes.set(outcome, counter);
    }
    counter.inc();
    r.duration.observe(i.durationMs / 1000);
    if (i.instanceMs !== undefined) r.instanceDuration.observe(i.instanceMs / 1000);
    if (i.cold) {
      r.coldStarts.inc();
      r.coldWait.observe(i.startupMs / 1000);
    }
    const kind = i.errorCode && LIMIT_KIND[i.errorCode];
    if (kind) this.limitBreaches.labels(r.namespace, r.fn, r.revision, kind).inc();
  }

  /**
   * Counts a request the gateway refused before any instance saw it (429, 503, 413, 404 of a
   * tag…), in kylix_requests_total with its error code; `revision` is unknown when it was refused
   * before a revision was picked.
   */
  refused(functionKey: string, revision: number | undefined, status: number, errorCode: string): void {
    const key = `${functionKey}/${revision ?? ''}/${status}/${errorCode}`;
    let counter = this.refusals.get(key);
    if (!counter) {
      const slash = functionKey.indexOf('/');
      counter = this.requests.series(
        functionKey.slice(0, slash),
        functionKey.slice(slash + 1),
        revision === undefined ? '' : String(revision),
        codeClass(status),
        errorCode,
      );
      this.refusals.set(key, counter);
    }
    counter.inc();
    const kind = LIMIT_KIND[errorCode];
    if (kind)
      this.limitBreaches
        .labels(
          functionKey.slice(0, functionKey.indexOf('/')),
          functionKey.slice(functionKey.indexOf('/') + 1),
          revision === undefined ? '' : String(revision),
          kind,
        )
        .inc();
  }

  /**
   * Times one binding call and counts it. An operation name becomes a label only once a call with
   * it reached a provider (the broker refuses unknown ones first), so a guest cannot mint series.
   */
  async bindingCall<T>(
    namespace: string,
    fn: string,
    kind: string,
    op: string,
    run: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    try {
      const value = await run();
      const meter = this.bindingMeter(namespace, fn, kind, op);
      meter.calls.inc();
      meter.duration.observe((performance.now() - started) / 1000);
      return value;
    } catch (err) {
      const opKey = `${kind}.${op}`;
      const code = err instanceof KylixError ? err.code : 'ERR_INTERNAL';
      if (!REFUSED_BEFORE_PROVIDER.has(code)) this.knownOps.add(opKey);
      const opLabel = this.knownOps.has(opKey) ? op : 'other';
      this.bindingCalls.series(namespace, fn, kind, opLabel).inc();
      this.bindingErrors.series(namespace, fn, kind, opLabel, code).inc();
      this.bindingDuration.series(kind, opLabel).observe((performance.now() - started) / 1000);
      throw err;
    }
  }

  /** Counts one scheduled tick fired into a function. */
  cronFired(namespace: string, fn: string, ok: boolean): void {
    this.cronFires.labels(namespace, fn, ok ? 'ok' : 'error').inc();
  }

  /** Counts scheduled ticks missed (see kylix_cron_misses_total). */
  cronMissed(namespace: string, fn: string, reason: 'skipped' | 'late', count = 1): void {
    if (count > 0) this.cronMisses.labels(namespace, fn, reason).inc(count);
  }

  /** Counts one watch stream opened on the API; the returned function counts it closed (call it once). */
  watchOpened(kind: string): () => void {
    this.watchClients.labels(kind).inc();
    let open = true;
    return () => {
      if (open) this.watchClients.labels(kind).dec();
      open = false;
    };
  }

  /** Records one reconcile of one object by `controller`. */
  reconciled(controller: string, seconds: number, failed: boolean): void {
    this.reconcileDuration.labels(controller).observe(seconds);
    if (failed) this.reconcileFailures.labels(controller).inc();
  }

  /** Counts one delivered message by what became of it. */
  queueDelivery(namespace: string, queue: string, fn: string, result: string): void {
    this.queueDeliveries.labels(namespace, queue, fn, result).inc();
  }

  /** Records one control API request. */
  apiRequest(verb: string, kind: string, code: number, seconds: number): void {
    this.apiRequests.labels(verb, kind, String(code)).inc();
    this.apiDuration.labels(verb, kind).observe(seconds);
  }

  /** The exposition's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * The series a successful binding call counts in (its operation is then a known one). The last
   * one is kept: a function making calls in a loop makes the same call many times in a row.
   */
  private bindingMeter(namespace: string, fn: string, kind: string, op: string): BindingMeter {
    const last = this.lastBindingMeter;
    if (last && last.op === op && last.kind === kind && last.fn === fn && last.namespace === namespace)
      return last;
    this.knownOps.add(`${kind}.${op}`);
    const meter: BindingMeter = {
      namespace,
      fn,
      kind,
      op,
      calls: this.bindingCalls.series(namespace, fn, kind, op),
      duration: this.bindingDuration.series(kind, op),
    };
    this.lastBindingMeter = meter;
    return meter;
  }

  private children(functionKey: string, revision: number): RevisionChildren {
    // A busy node serves one revision many times in a row: the last one found needs no key built.
    const last = this.lastChildren;
    if (last && last.functionKey === functionKey && last.revisionNumber === revision) return last;
    const key = `${functionKey}/${revision}`;
    let r = this.revisions.get(key);
    if (!r) {
      const slash = functionKey.indexOf('/');
      const namespace = functionKey.slice(0, slash);
      const fn = functionKey.slice(slash + 1);
      const rev = String(revision);
      r = {
        functionKey,
        revisionNumber: revision,
        namespace,
        fn,
        revision: rev,
        duration: this.duration.series(namespace, fn, rev),
        instanceDuration: this.instanceDuration.series(namespace, fn, rev),
        coldStarts: this.coldStarts.series(namespace, fn, rev),
        coldWait: this.coldWait.series(namespace, fn, rev),
        outcomes: new Map(),
      };
      this.revisions.set(key, r);
    }
    this.lastChildren = r;
    return r;
  }
}
