import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../src/observability/series-metrics.js';

/** An exposition as a sorted list of "name{sorted labels} value" lines, so label order does not matter. */
function canonical(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([^{ ]+)(?:\{(.*)\})? (.+)$/.exec(l);
      assert.ok(m, `an exposition line: ${l}`);
      const labels = (m[2] ?? '')
        .split(/,(?=[a-z_]+=")/)
        .filter(Boolean)
        .sort()
        .join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

test('series metrics render what prom-client renders for the same observations', async () => {
  const bounds = [0.001, 0.01, 0.1, 1];
  const ours = new Registry();
  const theirs = new Registry();
  const h = new SeriesHistogram('t_seconds', 'help text', ['namespace', 'function'], bounds, ours);
  const c = new SeriesCounter('t_total', 'help "quoted"\\', ['namespace', 'code'], ours);
  const ph = new Histogram({
    name: 't_seconds',
    help: 'help text',
    labelNames: ['namespace', 'function'],
    buckets: bounds,
    registers: [theirs],
  });
  const pc = new Counter({
    name: 't_total',
    help: 'help "quoted"\\',
    labelNames: ['namespace', 'code'],
    registers: [theirs],
  });
  const values = [0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.5, 1, 2, 30, Number.NaN];
  for (const [ns, fn] of [
    ['a', 'x'],
    ['b', 'we"ird\\name\n'],
  ] as const) {
    const s = h.series(ns, fn);
    for (const v of values) {
      s.observe(v);
      if (Number.isFinite(v)) ph.labels(ns, fn).observe(v);
    }
    c.series(ns, '2xx').inc();
    c.series(ns, '2xx').inc(2);
    pc.labels(ns, '2xx').inc();
    pc.labels(ns, '2xx').inc(2);
  }
  assert.deepEqual(canonical(await ours.metrics()), canonical(await theirs.metrics()));
  // The JSON form (read by the dashboard's history) carries the same values and series names.
  const json = (await ours.getSingleMetric('t_seconds')?.get())?.values as {
    metricName?: string;
    value: number;
    labels: Record<string, unknown>;
  }[];
  const count = json.find((v) => v.metricName === 't_seconds_count' && v.labels.namespace === 'a');
  assert.equal(count?.value, values.length - 1);
  assert.throws(() => h.series('only-one'), /takes 2 label values/);
});
