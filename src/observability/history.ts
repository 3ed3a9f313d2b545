/**
 * The last hour of each function's figures, for the dashboard's charts: every ~10 s the node's
 * prom-client counters and gauges are read, the change since the previous sample is turned into
 * one point (requests/s, errors, cold starts, latency percentiles from the histogram buckets,
 * instances) and kept in a bounded ring per function. Nothing is added to the request path: the
 * sampler reads the same metrics /metrics renders. One node's history only (each node keeps its
 * own, as its /metrics does).
 */
import type { Registry } from 'prom-client';
import { quantile } from './quantile.js';

/** One function's history, one array per figure (the columnar shape uPlot draws), oldest first. */
export interface MetricsSeries {
  /** Seconds between samples. */
  intervalSeconds: number;
  /** End of each interval, Unix seconds. The last point may be a partial interval ending now. */
  time: number[];
  requestsPerSecond: number[];
  /** Requests answered 5xx or with a platform error, in the interval. */
  errors: number[];
  coldStarts: number[];
  /** Gateway-observed latency percentiles over the interval, ms (null: no request in it). */
  p50Ms: (number | null)[];
  p95Ms: (number | null)[];
  p99Ms: (number | null)[];
  /** Instances running at the end of the interval, over all revisions. */
  instances: number[];
  inFlight: number[];
}

/** Cumulative counters of one function at one moment. */
interface Totals {
  requests: number;
  errors: number;
  coldStarts: number;
  /** Cumulative count per histogram bucket upper bound (seconds; Infinity for +Inf). */
  buckets: Map<number, number>;
  instances: number;
  inFlight: number;
}

interface Point {
  time: number;
  requestsPerSecond: number;
  errors: number;
  coldStarts: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  instances: number;
  inFlight: number;
}

/** A fixed-size ring of points: the oldest is overwritten once it is full. */
class Ring {
  private readonly items: Point[] = [];
  private next = 0;
  constructor(private readonly capacity: number) {}
  push(p: Point): void {
    if (this.items.length < this.capacity) this.items.push(p);
    else this.items[this.next] = p;
    this.next = (this.next + 1) % this.capacity;
  }
  /** Oldest first. */
  list(): Point[] {
    return this.items.length < this.capacity
      ? [...this.items]
      : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** The q-quantile (ms) from cumulative bucket counts, interpolated as Prometheus does. */
export function bucketQuantile(q: number, buckets: Map<number, number>): number | null {
  const seconds = quantile(q, [...buckets]);
  return seconds === null ? null : seconds * 1000;
}

/** A counter's increase; a counter that went down was reset (a restart), so count from zero. */
function increase(now: number, before: number | undefined): number {
  return before === undefined || now < before ? now : now - before;
}

/** See the file comment. */
export class MetricsHistory {
  private readonly rings = new Map<string, Ring>();
  private last = new Map<string, Totals>();
  private lastTime: number;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private readonly intervalMs: number;
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(
    private readonly registry: Registry,
    options: { intervalMs?: number; windowMs?: number; now?: () => number } = {},
  ) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.capacity = Math.ceil((options.windowMs ?? 3_600_000) / this.intervalMs);
    this.now = options.now ?? Date.now;
    this.lastTime = this.now();
  }

  /** 1. takes the baseline, 2. samples every interval until stop() (the timer keeps no process alive). */
  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops sampling; what was kept stays readable. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now: one point per function, for the interval since the previous sample. */
  sample(): Promise<void> {
    // Samples never overlap: a slow read of the gauges must not produce two points for one interval.
    this.sampling ??= (async () => {
      const time = this.now();
      const totals = await this.read();
      for (const [key, t] of totals) {
        let ring = this.rings.get(key);
        if (!ring) {
          ring = new Ring(this.capacity);
          this.rings.set(key, ring);
        }
        ring.push(this.point(time, t, this.last.get(key)));
      }
      this.last = totals;
      this.lastTime = time;
    })().finally(() => {
      this.sampling = undefined;
    });
    return this.sampling;
  }

  /** The functions with any history, as "namespace/name". */
  functions(): string[] {
    return [...this.rings.keys()].sort();
  }

  /**
   * The last hour of a function, plus a point for the partial interval since the last sample,
   * so a chart shows traffic from a moment ago without waiting for the next tick.
   */
  async series(namespace: string, name: string): Promise<MetricsSeries> {
    const key = `${namespace}/${name}`;
    const points = this.rings.get(key)?.list() ?? [];
    const time = this.now();
    if (time - this.lastTime >= 1000) {
      const current = (await this.read()).get(key);
      if (current) points.push(this.point(time, current, this.last.get(key)));
    }
    const column = <K extends keyof Point>(k: K) => points.map((p) => p[k]);
    return {
      intervalSeconds: this.intervalMs / 1000,
      time: column('time'),
      requestsPerSecond: column('requestsPerSecond'),
      errors: column('errors'),
      coldStarts: column('coldStarts'),
      p50Ms: column('p50Ms'),
      p95Ms: column('p95Ms'),
      p99Ms: column('p99Ms'),
      instances: column('instances'),
      inFlight: column('inFlight'),
    };
  }

  private point(time: number, now: Totals, before: Totals | undefined): Point {
    const seconds = Math.max((time - this.lastTime) / 1000, 0.001);
    const buckets = new Map<number, number>();
    for (const [le, count] of now.buckets) buckets.set(le, increase(count, before?.buckets.get(le)));
    const requests = increase(now.requests, before?.requests);
    const round = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
    return {
      time: Math.round(time / 1000),
      requestsPerSecond: Math.round((requests / seconds) * 100) / 100,
      errors: increase(now.errors, before?.errors),
      coldStarts: increase(now.coldStarts, before?.coldStarts),
      p50Ms: requests ? round(bucketQuantile(0.5, buckets)) : null,
      p95Ms: requests ? round(bucketQuantile(0.95, buckets)) : null,
      p99Ms: requests ? round(bucketQuantile(0.99, buckets)) : null,
      instances: now.instances,
      inFlight: now.inFlight,
    };
  }

  /** Reads every function's cumulative figures from the registry (the gauges collect as they do for a scrape). */
  private async read(): Promise<Map<string, Totals>> {
    const out = new Map<string, Totals>();
    type Labels = Partial<Record<string, string | number>>;
    const totals = (labels: Labels) => {
      const key = `${labels.namespace}/${labels.function}`;
      let t = out.get(key);
      if (!t) {
        t = { requests: 0, errors: 0, coldStarts: 0, buckets: new Map(), instances: 0, inFlight: 0 };
        out.set(key, t);
      }
      return t;
    };
    // Histogram values carry the name of their series (_bucket, _count, _sum).
    const values = async (name: string) =>
      ((await this.registry.getSingleMetric(name)?.get())?.values ?? []) as {
        labels: Labels;
        value: number;
        metricName?: string;
      }[];
    for (const v of await values('kylix_request_duration_seconds')) {
      const t = totals(v.labels);
      if (v.metricName?.endsWith('_count')) t.requests += v.value;
      else if (v.metricName?.endsWith('_bucket')) {
        const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
        t.buckets.set(le, (t.buckets.get(le) ?? 0) + v.value);
      }
    }
    for (const v of await values('kylix_requests_total'))
      if (v.labels.code_class === '5xx' || v.labels.error_code) totals(v.labels).errors += v.value;
    for (const v of await values('kylix_cold_starts_total')) totals(v.labels).coldStarts += v.value;
    for (const v of await values('kylix_instances')) totals(v.labels).instances += v.value;
    for (const v of await values('kylix_in_flight_requests')) totals(v.labels).inFlight += v.value;
    return out;
  }
}
