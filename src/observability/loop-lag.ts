/**
 * The event-loop lag gauges (`nodejs_eventloop_lag_*`), with the names and help of prom-client's
 * defaults, but without its 10 ms timer running while the node is idle: that timer was nearly all
 * of an idle node's wake-ups (about 100 a second).
 *
 * prom-client samples with `monitorEventLoopDelay({ resolution: 10 })`, which records the whole
 * time between two firings of a 10 ms timer: an idle loop reads ~10 ms, a loop blocked for 50 ms
 * reads ~60. This sampler records the same quantity while the loop was busy over the last second
 * (event-loop utilization above BUSY): a 10 ms timer, each sample 10 ms plus how late it fired.
 * While the loop is idle the timer fires once a second, and each sample is 10 ms plus the longer
 * of how late it fired and how long the loop was busy since the last one: an upper bound on the
 * longest block in that second, so a block shows wherever it fell (a one-second timer alone would
 * miss any block that ended before it was due). An idle loop so reads a little over 10 ms.
 *
 * `nodejs_eventloop_lag_seconds` is a setImmediate's delay measured at the scrape itself
 * (prom-client's showed the one measured at the scrape before).
 *
 * One sampler serves the whole process; each registry (a node; tests run several in one process)
 * gets its own histogram, reset after each of its scrapes as prom-client's was.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/** The resolution prom-client used and the figures are expressed in (ms). */
const RESOLUTION_MS = 10;
/** The tick while the loop is idle, and the window busy or idle is judged over (ms). */
const IDLE_MS = 1000;
/**
 * Event-loop utilization over the last window above which the loop counts as busy. The 10 ms
 * ticks alone make 0.5 % of a window, and several times that on a contended core.
 */
const BUSY = 0.05;

/** Records into every live registry's histogram; runs once the first registry asks for it. */
export class LagSampler {
  /** Times it has fired (for tests: how often an idle or a busy loop is woken). */
  ticks = 0;
  private readonly sinks = new Set<WeakRef<RecordableHistogram>>();
  private timer?: NodeJS.Timeout;
  /** When the timer was set, and for how long (ms). */
  private last = 0;
  private interval = RESOLUTION_MS;
  /**
   * The window's start and the loop's utilization counters then. While idle every tick starts a
   * window, so they are also the counters at the last tick, which the idle sample's bound reads.
   */
  private windowStart = 0;
  private elu = performance.eventLoopUtilization();

  /** Whether it is on its idle (one-second) tick. */
  get idle(): boolean {
    return this.interval === IDLE_MS;
  }

  /** A histogram this sampler records into for as long as the caller holds it. */
  histogram(): RecordableHistogram {
    const h = createHistogram();
    this.sinks.add(new WeakRef(h));
    if (!this.timer) {
      this.windowStart = performance.now();
      this.elu = performance.eventLoopUtilization();
      this.schedule(RESOLUTION_MS);
    }
    return h;
  }

  private schedule(ms: number): void {
    this.interval = ms;
    this.last = performance.now();
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    this.ticks++;
    const now = performance.now();
    let blocked = Math.max(0, now - this.last - this.interval);
    if (this.interval === IDLE_MS)
      blocked = Math.max(blocked, performance.eventLoopUtilization(this.elu).active);
    const ns = Math.max(1, Math.round((RESOLUTION_MS + blocked) * 1e6));
    for (const ref of this.sinks) {
      const h = ref.deref();
      if (h) h.record(ns);
      else this.sinks.delete(ref);
    }
    if (this.sinks.size === 0) {
      this.timer = undefined;
      return;
    }
    let next = this.interval;
    // Judged on every idle tick: a timer may fire a fraction of a millisecond before its second is
    // over by performance.now(), and skipping the judgement would leave it idle a second longer.
    if (this.interval === IDLE_MS || now - this.windowStart >= IDLE_MS) {
      next = performance.eventLoopUtilization(this.elu).utilization > BUSY ? RESOLUTION_MS : IDLE_MS;
      this.windowStart = now;
      this.elu = performance.eventLoopUtilization();
    }
    this.schedule(next);
  }
}

const sampler = new LagSampler();

/** The gauges prom-client's default metrics would register for the event loop's lag. */
export const LOOP_LAG_METRICS = [
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
] as const;

/**
 * Registers the lag gauges on `registry`; their figures cover the time since its last scrape.
 * `source` is the process's sampler (a test may give its own).
 */
export function registerLoopLag(registry: Registry, source: LagSampler = sampler): void {
  const h = source.histogram();
  const gauge = (name: string, help: string, collect?: () => Promise<void>) =>
    new Gauge({ name, help, registers: [registry], collect });
  const [lagName, minName, maxName, meanName, stddevName, p50Name, p90Name, p99Name] = LOOP_LAG_METRICS;
  // Registered first, as prom-client's: the registry renders in order, and this gauge's collect
  // sets the others before they are read (synchronously, before it waits for a setImmediate).
  const lag = gauge(lagName, 'Lag of event loop in seconds.', async () => {
    // No sample since the last scrape (two scrapers within an idle tick): the figures stay as they were.
    if (h.count > 0) {
      min.set(h.min / 1e9);
      max.set(h.max / 1e9);
      mean.set(h.mean / 1e9);
      stddev.set(h.stddev / 1e9);
      p50.set(h.percentile(50) / 1e9);
      p90.set(h.percentile(90) / 1e9);
      p99.set(h.percentile(99) / 1e9);
      h.reset();
    }
    const started = process.hrtime.bigint();
    await new Promise((resolve) => setImmediate(resolve));
    lag.set(Number(process.hrtime.bigint() - started) / 1e9);
  });
  const min = gauge(minName, 'The minimum recorded event loop delay.');
  const max = gauge(maxName, 'The maximum recorded event loop delay.');
  const mean = gauge(meanName, 'The mean of the recorded event loop delays.');
  const stddev = gauge(stddevName, 'The standard deviation of the recorded event loop delays.');
  const p50 = gauge(p50Name, 'The 50th percentile of the recorded event loop delays.');
  const p90 = gauge(p90Name, 'The 90th percentile of the recorded event loop delays.');
  const p99 = gauge(p99Name, 'The 99th percentile of the recorded event loop delays.');
}
