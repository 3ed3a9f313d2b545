/**
 * A counter and a histogram for the request path, kept in the node's prom-client Registry and
 * rendered exactly as prom-client renders its own. prom-client's Counter and Histogram hash and
 * validate the labels on every inc() and observe(), even on a child made by labels(): about 4 % of
 * the gateway's CPU per request, measured. Here a series is found once (`series(...)`, cached by
 * the caller) and counting is a few additions; the work of labels happens at scrape time.
 */
import type { Metric, Registry } from 'prom-client';

/** One value of the exposition, in the shape prom-client's registry renders. */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** What both metrics share: registration, series by label values, and the registry's interface. */
abstract class SeriesMetric<S> {
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  protected readonly all = new Map<string, { labels: Record<string, string>; series: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames' order), made on first use. */
  series(...values: string[]): S {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name} takes ${this.labelNames.length} label values, not ${values.length}`);
    const key = values.join('\u0000');
    let entry = this.all.get(key);
    if (!entry) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i]!;
      });
      entry = { labels, series: this.make() };
      this.all.set(key, entry);
    }
    return entry.series;
  }

  /** For the registry (render and JSON). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const { labels, series } of this.all.values()) this.samples(labels, series, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  getForPromString() {
    return this.get();
  }

  /** Forgets every series (the registry's resetMetrics). */
  reset(): void {
    this.all.clear();
  }

  protected abstract make(): S;
  protected abstract samples(labels: Record<string, string>, series: S, out: Sample[]): void;
}

/** One counter series. */
export class CounterSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A Prometheus counter; see the file comment. */
export class SeriesCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter';
  protected make(): CounterSeries {
    return new CounterSeries();
  }
  protected samples(labels: Record<string, string>, s: CounterSeries, out: Sample[]): void {
    out.push({ value: s.value, labels });
  }
}

/** One histogram series: a count per bucket (not cumulative), the sum and the count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** A Prometheus histogram with fixed upper bounds; see the file comment. */
export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }
  protected make(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }
  protected samples(labels: Record<string, string>, s: HistogramSeries, out: Sample[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += s.counts[i]!;
      out.push({ value: cumulative, labels: { ...labels, le }, metricName: bucket });
    });
    out.push({ value: s.count, labels: { ...labels, le: '+Inf' }, metricName: bucket });
    out.push({ value: s.sum, labels, metricName: `${this.name}_sum` });
    out.push({ value: s.count, labels, metricName: `${this.name}_count` });
  }
}
