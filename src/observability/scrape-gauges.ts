/**
 * The metrics that describe state rather than events: instances, requests in flight, sandbox
 * processes' CPU and memory, queue depths. None is kept up to date on the request path; each is
 * read from its source when Prometheus scrapes (prom-client's `collect`), so their cost is per
 * scrape, not per request. Sources are optional, so tests and nodes without a runtime leave them out.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { processTreeUsage } from './process-stats.js';

/** A revision's live figures, read at scrape time. */
export interface RevisionGaugeSource {
  /** "namespace/function/revision". */
  key: string;
  /** Instances running. */
  instances: number;
  /** Instances being started. */
  starting: number;
  inFlight: number;
}

/** A queue's counts, read at scrape time (see queue-stats.ts: cached, with a timeout). */
export interface QueueGaugeSource {
  namespace: string;
  queue: string;
  ready: number;
  inFlight: number;
  delayed: number;
  /** Age of the oldest message not yet acked (seconds); absent when the queue is empty. */
  oldestAgeSeconds?: number;
}

/** Where the scrape-time gauges come from; each is optional. */
export interface MetricsSources {
  revisions?(): Iterable<RevisionGaugeSource>;
  /** The sandbox processes running instances, by revision key. */
  sandboxProcesses?(): Iterable<{ revisionKey: string; pid: number }>;
  queues?(): Promise<QueueGaugeSource[]>;
  /** Requests the gateway serves right now. */
  gatewayInFlight?(): number;
}

type RevisionLabels = { namespace: string; function: string; revision: string };

/** The labels of a revision key "namespace/function/revision". */
export function revisionLabels(key: string): RevisionLabels {
  const [namespace = '', fn = '', revision = ''] = key.split('/');
  return { namespace, function: fn, revision };
}

/** Registers every scrape-time metric whose source is given. */
export function registerScrapeGauges(registry: Registry, sources: MetricsSources): void {
  const revisionNames = ['namespace', 'function', 'revision'];
  new Gauge({
    name: 'kylix_instances',
    help: 'Instances per revision, by state: running (ready for requests) or starting.',
    labelNames: [...revisionNames, 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of sources.revisions?.() ?? []) {
        const labels = revisionLabels(r.key);
        this.set({ ...labels, state: 'running' }, r.instances);
        this.set({ ...labels, state: 'starting' }, r.starting);
      }
    },
  });
  new Gauge({
    name: 'kylix_in_flight_requests',
    help: 'Requests an instance of the revision is serving right now.',
    labelNames: revisionNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of sources.revisions?.() ?? []) this.set(revisionLabels(r.key), r.inFlight);
    },
  });
  if (sources.gatewayInFlight) {
    const read = sources.gatewayInFlight;
    new Gauge({
      name: 'kylix_gateway_in_flight_requests',
      help: 'Requests the gateway is serving right now, over all functions.',
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
  if (sources.sandboxProcesses) registerProcessMetrics(registry, sources.sandboxProcesses);
  if (sources.queues) registerQueueGauges(registry, sources.queues);
}

/** CPU and memory of each revision's sandbox processes, read from /proc once per scrape. */
function registerProcessMetrics(
  registry: Registry,
  processes: () => Iterable<{ revisionKey: string; pid: number }>,
): void {
  // One read of /proc per scrape feeds both metrics (prom-client collects them one after the other).
  let last: { at: number; usage: Map<string, { cpu: number; rss: number }> } | undefined;
  const read = () => {
    const now = performance.now();
    if (last && now - last.at < 1000) return last.usage;
    const usage = new Map<string, { cpu: number; rss: number }>();
    for (const { revisionKey, pid } of processes()) {
      const u = processTreeUsage(pid);
      if (!u) continue;
      const sum = usage.get(revisionKey) ?? { cpu: 0, rss: 0 };
      sum.cpu += u.cpuSeconds;
      sum.rss += u.rssBytes;
      usage.set(revisionKey, sum);
    }
    last = { at: now, usage };
    return usage;
  };
  const names = ['namespace', 'function', 'revision'];
  new Counter({
    name: 'kylix_sandbox_cpu_seconds_total',
    help: "CPU time (user + system) used by the revision's sandbox processes since they started; it restarts from 0 with a new process.",
    labelNames: names,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, u] of read()) this.inc(revisionLabels(key), u.cpu);
    },
  });
  new Gauge({
    name: 'kylix_sandbox_memory_bytes',
    help: "Resident memory of the revision's sandbox processes (all their instances).",
    labelNames: names,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, u] of read()) this.set(revisionLabels(key), u.rss);
    },
  });
}

/** Depth, in-flight, delayed and oldest-message age per queue. */
function registerQueueGauges(registry: Registry, read: () => Promise<QueueGaugeSource[]>): void {
  // One read of the providers per scrape feeds all four gauges.
  let pending: Promise<QueueGaugeSource[]> | undefined;
  const once = () => {
    pending ??= read().finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
  for (const [name, help, field] of [
    ['kylix_queue_messages_ready', 'Messages deliverable now (the queue depth).', 'ready'],
    ['kylix_queue_messages_in_flight', 'Messages leased to a consumer.', 'inFlight'],
    ['kylix_queue_messages_delayed', 'Messages waiting for their delay or retry backoff.', 'delayed'],
    [
      'kylix_queue_oldest_message_age_seconds',
      'Age of the oldest message not yet acked (absent when the queue is empty).',
      'oldestAgeSeconds',
    ],
  ] as const) {
    new Gauge({
      name,
      help,
      labelNames: ['namespace', 'queue'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const q of await once().catch(() => [])) {
          const value = q[field];
          if (value !== undefined) this.set({ namespace: q.namespace, queue: q.queue }, value);
        }
      },
    });
  }
}
