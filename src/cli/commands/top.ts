/**
 * `kylix top [--once] [--interval 2]`: per-function requests/s, latency p50/p99, errors, instances
 * and requests in flight, from two scrapes of the node's /metrics an interval apart (the rates and
 * percentiles are over that interval). Live by default, refreshing in place; --once prints one
 * table and exits, for scripts.
 */
import { KylixError } from '../../errors.js';
import { quantile } from '../../observability/quantile.js';
import type { ApiClient } from '../client.js';
import { table } from '../output.js';

export { quantile };

/** One sample of the exposition: name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (comments and blank lines skipped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** One function's row. */
export interface TopRow {
  namespace: string;
  function: string;
  requestsPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Requests answered 5xx or with a platform error, in the interval. */
  errors: number;
  instances: number;
  inFlight: number;
  coldStarts: number;
}

/** Sums samples of one metric per function ("namespace/function"), optionally per extra label. */
function perFunction(samples: Sample[], name: string, extra?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = `${s.labels.namespace}/${s.labels.function}${extra ? `\u0000${s.labels[extra]}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** The rows of `kylix top` from two scrapes `seconds` apart. */
export function topRows(before: Sample[], after: Sample[], seconds: number): TopRow[] {
  const delta = (name: string, extra?: string) => {
    const a = perFunction(after, name, extra);
    const b = perFunction(before, name, extra);
    // A counter that went down was reset (a restart): count from zero.
    return new Map([...a].map(([k, v]) => [k, v >= (b.get(k) ?? 0) ? v - (b.get(k) ?? 0) : v]));
  };
  const requests = delta('kylix_request_duration_seconds_count');
  const buckets = delta('kylix_request_duration_seconds_bucket', 'le');
  const cold = delta('kylix_cold_starts_total');
  const errors = new Map<string, number>();
  const prior = new Map(
    before
      .filter((s) => s.name === 'kylix_requests_total')
      .map((s) => [JSON.stringify(s.labels), s.value] as const),
  );
  for (const s of after) {
    if (s.name !== 'kylix_requests_total') continue;
    if (s.labels.code_class !== '5xx' && !s.labels.error_code) continue;
    const key = `${s.labels.namespace}/${s.labels.function}`;
    const was = prior.get(JSON.stringify(s.labels)) ?? 0;
    errors.set(key, (errors.get(key) ?? 0) + (s.value >= was ? s.value - was : s.value));
  }
  const instances = perFunction(after, 'kylix_instances');
  const inFlight = perFunction(after, 'kylix_in_flight_requests');
  const keys = new Set([
    ...perFunction(after, 'kylix_request_duration_seconds_count').keys(),
    ...instances.keys(),
  ]);
  return [...keys].sort().map((key) => {
    const [namespace = '', fn = ''] = key.split('/');
    const mine: [number, number][] = [];
    for (const [k, v] of buckets) {
      const [f, le = ''] = k.split('\u0000');
      if (f === key) mine.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v]);
    }
    const ms = (q: number) => {
      const s = quantile(q, mine);
      return s === null ? null : s * 1000;
    };
    return {
      namespace,
      function: fn,
      requestsPerSecond: (requests.get(key) ?? 0) / seconds,
      p50Ms: ms(0.5),
      p99Ms: ms(0.99),
      errors: errors.get(key) ?? 0,
      instances: instances.get(key) ?? 0,
      inFlight: inFlight.get(key) ?? 0,
      coldStarts: cold.get(key) ?? 0,
    };
  });
}

/** The rows as a terminal table. */
export function formatTop(rows: TopRow[], seconds: number): string {
  const ms = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(1) : v.toFixed(0));
  if (rows.length === 0) return 'No functions have been deployed or called on this node yet.';
  return `${table(
    ['NAMESPACE', 'FUNCTION', 'REQ/S', 'P50 MS', 'P99 MS', 'ERRORS', 'INSTANCES', 'IN FLIGHT', 'COLD'],
    rows.map((r) => [
      r.namespace,
      r.function,
      r.requestsPerSecond.toFixed(1),
      ms(r.p50Ms),
      ms(r.p99Ms),
      String(r.errors),
      String(r.instances),
      String(r.inFlight),
      String(r.coldStarts),
    ]),
  )}\n(rates and percentiles over the last ${seconds}s)`;
}

/** Fetches and parses the node's /metrics. */
async function scrape(client: ApiClient): Promise<Sample[]> {
  const res = await client.raw('GET', '/metrics');
  if (res.status === 404)
    throw new KylixError(
      'ERR_NOT_FOUND',
      'This node serves no /metrics; kylix top needs a node of version 0.1 or later.',
    );
  return parseExposition(await res.text());
}

/** Prints the table once (--once), or refreshes it every interval until Ctrl-C. */
export async function topCommand(
  client: ApiClient,
  flags: { once?: boolean; interval?: string; output?: string },
  write: (text: string) => void = (t) => process.stdout.write(t),
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  const seconds = Number(flags.interval ?? 2);
  if (!(seconds > 0 && seconds <= 3600))
    throw new KylixError('ERR_BAD_REQUEST', '--interval is a number of seconds between 0 and 3600.');
  let before = await scrape(client);
  for (;;) {
    await sleep(seconds * 1000);
    const after = await scrape(client);
    const rows = topRows(before, after, seconds);
    before = after;
    if (flags.output === 'json') write(`${JSON.stringify({ intervalSeconds: seconds, functions: rows })}\n`);
    else write(`${flags.once ? '' : '\u001b[H\u001b[2J'}${formatTop(rows, seconds)}\n`);
    if (flags.once) return;
  }
}
