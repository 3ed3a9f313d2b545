/** Quantiles of Prometheus histograms, shared by `kylix top` and the dashboard's history. */

/** The q-quantile of a histogram's buckets (cumulative counts by upper bound), as Prometheus estimates it. */
export function quantile(q: number, buckets: [number, number][]): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return prevBound;
      return prevBound + (bound - prevBound) * ((rank - prevCount) / Math.max(count - prevCount, 1e-9));
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}
