/**
 * Queue figures for the scrape, from whichever provider serves queues (embedded or NATS), at a
 * bounded cost: a scrape reads at most MAX_QUEUES queues, STATS_CONCURRENCY at a time, each within
 * STATS_TIMEOUT_MS (a queue that does not answer in time is left out of that scrape), and the
 * result is kept for CACHE_MS, so several Prometheus servers scraping one node, or a short scrape
 * interval, do not multiply the load on the backend.
 */
import type { QueueStats } from '../bindings/queue/interface.js';
import type { QueueGaugeSource } from './scrape-gauges.js';

/** How long one scrape's figures are reused. */
const CACHE_MS = 5000;
/** How long one queue's stats may take. */
const STATS_TIMEOUT_MS = 2000;
/** Queues read at once. */
const STATS_CONCURRENCY = 16;
/** Queues reported at most (a bound on the series and on the work per scrape). */
const MAX_QUEUES = 1000;

/** What the reader needs: the queues that exist, and their stats from the provider. */
export interface QueueStatsSource {
  list(): Promise<{ namespace: string; name: string }[]>;
  stats(ref: { namespace: string; name: string }): Promise<QueueStats>;
  oldestTimestamp(ref: { namespace: string; name: string }): Promise<number | undefined>;
}

/** Rejects after `ms` unless `p` settles first. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
      timer.unref();
    }),
  ]);
}

/** A cached, time-bounded reader of every queue's figures; see the file comment. */
export function queueStatsReader(
  source: QueueStatsSource,
  now: () => number = Date.now,
): () => Promise<QueueGaugeSource[]> {
  let cached: { at: number; value: Promise<QueueGaugeSource[]> } | undefined;
  const readAll = async (): Promise<QueueGaugeSource[]> => {
    const queues = (await within(source.list(), STATS_TIMEOUT_MS)).slice(0, MAX_QUEUES);
    const out: QueueGaugeSource[] = [];
    for (let i = 0; i < queues.length; i += STATS_CONCURRENCY) {
      const chunk = queues.slice(i, i + STATS_CONCURRENCY);
      const results = await Promise.allSettled(
        chunk.map((ref) =>
          within(
            Promise.all([source.stats(ref), source.oldestTimestamp(ref)]).then(
              ([stats, oldestTimestamp]) => ({
                ...stats,
                oldestTimestamp,
              }),
            ),
            STATS_TIMEOUT_MS,
          ),
        ),
      );
      const at = now();
      results.forEach((r, j) => {
        if (r.status !== 'fulfilled') return;
        const ref = chunk[j] as { namespace: string; name: string };
        const { ready, inFlight, delayed, oldestTimestamp } = r.value;
        out.push({
          namespace: ref.namespace,
          queue: ref.name,
          ready,
          inFlight,
          delayed,
          ...(oldestTimestamp !== undefined
            ? { oldestAgeSeconds: Math.max(0, (at - oldestTimestamp) / 1000) }
            : {}),
        });
      });
    }
    return out;
  };
  return () => {
    const t = now();
    if (!cached || t - cached.at >= CACHE_MS) {
      const value = readAll();
      cached = { at: t, value };
      // A failed read is not cached: the next scrape tries again.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
    }
    return cached.value;
  };
}
