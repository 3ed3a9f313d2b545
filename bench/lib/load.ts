/**
 * The load generator: autocannon's own CLI, run with Node as a separate process (pinned to the
 * client cores), its JSON output parsed into the few figures the report needs.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { runProcess } from './processes.js';

/** The autocannon CLI script shipped by the npm package. */
export const AUTOCANNON_CLI = join(
  dirname(createRequire(import.meta.url).resolve('autocannon/package.json')),
  'autocannon.js',
);

/** How to load one URL. */
export interface LoadOptions {
  connections: number;
  /** Seconds of load; ignored when `amount` is set. */
  durationS?: number;
  /** Send exactly this many requests instead of running for a duration. */
  amount?: number;
  /** Cores for autocannon. */
  cpus?: string;
  method?: string;
  headers?: Record<string, string>;
  /** Requests per second over all connections (autocannon --overallRate); unlimited when absent. */
  rate?: number;
}

/** What one autocannon run measured. */
export interface LoadResult {
  /** Mean requests per second over the run (autocannon's per-second samples). */
  rps: number;
  /** Latency percentiles in ms. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Responses with a 2xx status. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
}

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}

/** Runs autocannon against `url`; rejects when it fails or prints no result. */
export async function loadTest(url: string, options: LoadOptions): Promise<LoadResult> {
  const args = [AUTOCANNON_CLI, '--json', '--connections', String(options.connections)];
  if (options.amount !== undefined) args.push('--amount', String(options.amount));
  else args.push('--duration', String(options.durationS ?? 10));
  if (options.method) args.push('--method', options.method);
  if (options.rate) args.push('--overallRate', String(options.rate));
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push('--headers', `${k}=${v}`);
  args.push(url);
  const limitS = (options.durationS ?? 10) + 60;
  const { code, stdout, stderr } = await runProcess('autocannon', process.execPath, args, {
    cpus: options.cpus,
    timeoutMs: limitS * 1000,
  });
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (code !== 0 || !line)
    throw new Error(`autocannon failed (exit ${code}) against ${url}:\n${stderr.slice(-2000)}`);
  const j = JSON.parse(line) as AutocannonJson;
  return {
    rps: Math.round(j.requests.average),
    p50: j.latency.p50,
    p90: j.latency.p90,
    p99: j.latency.p99,
    max: j.latency.max,
    mean: Math.round(j.latency.average * 100) / 100,
    ok: j['2xx'],
    non2xx: j.non2xx,
    errors: j.errors,
    timeouts: j.timeouts,
    durationS: j.duration,
  };
}

/** Polls `url` until it answers 200 with `expectedBody` (when given); rejects after `timeoutMs`. */
export async function waitForBody(
  url: string,
  expectedBody: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      const body = await res.text();
      if (res.status === 200 && (expectedBody === undefined || body === expectedBody)) return;
      last = `${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer as expected within ${timeoutMs} ms (last: ${last})`);
}
