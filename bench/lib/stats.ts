/**
 * Small statistics over samples in milliseconds: percentiles (nearest rank), median, mean.
 */

/** The p-th percentile (0-100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The median (50th percentile). */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** The arithmetic mean; NaN for no samples. */
export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

/** p50, p99, min, max and count of samples, rounded to 0.01 ms. */
export function summarize(samples: readonly number[]): {
  count: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
} {
  const r = (n: number) => Math.round(n * 100) / 100;
  return {
    count: samples.length,
    p50: r(percentile(samples, 50)),
    p99: r(percentile(samples, 99)),
    min: r(Math.min(...samples)),
    max: r(Math.max(...samples)),
    mean: r(mean(samples)),
  };
}

/** Milliseconds since `start` (a performance.now() value). */
export function since(start: number): number {
  return performance.now() - start;
}
