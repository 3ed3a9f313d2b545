/**
 * A load run that tells answers apart by status: autocannon driven in the harness process (pinned
 * to the client cores), each response counted as served (2xx) or refused (429/503) with its own
 * latency histogram, and per-second counts of served responses to see throughput recover.
 */
import { createRequire } from 'node:module';

/** The part of autocannon's programmatic API used here (the package ships no types). */
type Autocannon = (
  options: { url: string; connections: number; duration: number; overallRate?: number },
  done: (err: Error | null, result: { errors: number; timeouts: number }) => void,
) => {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  stop(): void;
};
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** How to load one URL. */
export interface StatusLoadOptions {
  connections: number;
  durationS: number;
  /** Requests per second over all connections (open loop); unlimited when absent. */
  rate?: number;
  /** Stop as soon as this returns true; it is asked after each full second. */
  stopWhen?(perSecond2xx: number[]): boolean;
}

/** What one run measured, split by status. */
export interface StatusLoadResult {
  durationS: number;
  /** 2xx responses per second, over the whole run. */
  okPerS: number;
  ok: number;
  /** 429 and 503 responses. */
  refused429: number;
  refused503: number;
  other: number;
  errors: number;
  timeouts: number;
  okLatency: Percentiles;
  refusedLatency: Percentiles;
  /** 2xx responses in each whole second of the run. */
  perSecond2xx: number[];
}

/** Latency percentiles in ms. */
export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** Latencies kept in 0.1 ms buckets up to 10 s: bounded memory, exact enough. */
class Histogram {
  private readonly buckets = new Uint32Array(100_001);
  count = 0;
  add(ms: number): void {
    this.buckets[Math.min(100_000, Math.round(ms * 10))]!++;
    this.count++;
  }
  percentiles(): Percentiles {
    if (this.count === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    const at = (q: number) => {
      const want = Math.ceil(q * this.count);
      let seen = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        seen += this.buckets[i]!;
        if (seen >= want) return i / 10;
      }
      return Number.NaN;
    };
    let max = 0;
    for (let i = this.buckets.length - 1; i >= 0; i--)
      if (this.buckets[i]) {
        max = i / 10;
        break;
      }
    return { p50: at(0.5), p99: at(0.99), max };
  }
}

/** Runs the load; see the file comment. */
export function statusLoad(url: string, options: StatusLoadOptions): Promise<StatusLoadResult> {
  const ok = new Histogram();
  const refused = new Histogram();
  let refused429 = 0;
  let refused503 = 0;
  let other = 0;
  const perSecond: number[] = [];
  const t0 = performance.now();
  let stopped = false;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: options.connections,
        duration: options.durationS,
        ...(options.rate ? { overallRate: options.rate } : {}),
      },
      (err, result) => {
        clearInterval(ticker);
        if (err) return reject(err);
        const durationS = (performance.now() - t0) / 1000;
        resolve({
          durationS,
          okPerS: Math.round(ok.count / durationS),
          ok: ok.count,
          refused429,
          refused503,
          other,
          errors: result.errors,
          timeouts: result.timeouts,
          okLatency: ok.percentiles(),
          refusedLatency: refused.percentiles(),
          perSecond2xx: perSecond,
        });
      },
    );
    let second = 0;
    const ticker = setInterval(() => {
      perSecond.push(second);
      second = 0;
      if (!stopped && options.stopWhen?.(perSecond)) {
        stopped = true;
        instance.stop();
      }
    }, 1000);
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) {
        ok.add(ms);
        second++;
      } else if (status === 429 || status === 503) {
        refused.add(ms);
        if (status === 429) refused429++;
        else refused503++;
      } else other++;
    });
  });
}
