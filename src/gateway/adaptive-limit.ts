/**
 * An adaptive concurrency limit, after Netflix concurrency-limits' Gradient2: requests report their
 * latency (RTT) as they finish; once per window the limit moves by the gradient between a long-term
 * baseline RTT and the window's mean RTT. When latency rises past `tolerance` × the baseline the
 * limit shrinks (by at most half per window), otherwise it grows (fast while latency is at the
 * baseline, by √limit of headroom while it is above it), but only
 * while the traffic actually uses the limit (a function serving 3 requests says nothing about 300).
 *
 * The baseline is the latency of windows that used the limit: it follows their means down fast
 * and up slowly (~20 s), so a burst cannot teach the limiter that its own queueing is the normal
 * latency, one lucky window cannot make every later one look slow, and a machine that got slower
 * for good is learnt in the end. No timer: the work is a few additions per request and
 * one update per window, done by the request that closes the window.
 */

/** A window whose mean RTT is within this factor of the baseline saw no queueing. */
const AT_BASELINE = 1.25;
/** Fall of the baseline per window towards a lower mean, as a fraction of the gap. */
const BASELINE_FALL = 0.2;

/** The limiter's parameters. */
export interface AdaptiveLimitOptions {
  /** Limit before any measurement. */
  initial: number;
  /** Never below (at least 1). */
  min: number;
  /** Never above (the hard cap, e.g. spec.limits.maxConcurrency). */
  max: number;
  /** How far the window's mean RTT may rise above the baseline before the limit shrinks. */
  tolerance: number;
  /** The limit changes at most once per window. */
  windowMs: number;
  /** …and only from a window with at least this many samples. */
  minSamples: number;
  /** Weight of a window's new limit against the current one (0–1). */
  smoothing: number;
  /** Rise of the baseline per window towards a higher mean, as a fraction of the gap. */
  baselineRise: number;
}

/** Defaults: 100 ms windows, latency may double before the limit shrinks, baseline rises over ~20 s. */
export const ADAPTIVE_DEFAULTS: AdaptiveLimitOptions = {
  initial: 100,
  min: 1,
  max: 10_000,
  tolerance: 2,
  windowMs: 100,
  minSamples: 10,
  smoothing: 0.2,
  baselineRise: 0.005,
};

/** See the file comment. */
export class AdaptiveLimit {
  private limitValue: number;
  /** The limit as an integer, for the admission check on every request. */
  limit: number;
  /** The long-term RTT (ms): 0 until the first window closes. */
  baseline = 0;
  private readonly o: AdaptiveLimitOptions;
  private windowStart = Number.NaN;
  private sum = 0;
  private count = 0;
  private peakInFlight = 0;

  constructor(options: Partial<AdaptiveLimitOptions> = {}) {
    this.o = { ...ADAPTIVE_DEFAULTS, ...options };
    this.o.min = Math.max(1, this.o.min);
    this.limitValue = Math.min(this.o.max, Math.max(this.o.min, this.o.initial));
    this.limit = Math.floor(this.limitValue);
  }

  /** Changes the hard cap (a new spec.limits.maxConcurrency) without losing what was learnt. */
  setMax(max: number): void {
    this.o.max = Math.max(this.o.min, max);
    this.set(Math.min(this.limitValue, this.o.max));
  }

  /**
   * Records one finished request: its RTT in ms, the clock now (ms) and how many requests were in
   * flight when it was admitted.
   */
  sample(rttMs: number, nowMs: number, inFlight: number): void {
    if (Number.isNaN(this.windowStart)) this.windowStart = nowMs;
    this.sum += rttMs;
    this.count++;
    if (inFlight > this.peakInFlight) this.peakInFlight = inFlight;
    if (nowMs - this.windowStart < this.o.windowMs || this.count < this.o.minSamples) return;
    this.update(this.sum / this.count);
    this.windowStart = nowMs;
    this.sum = 0;
    this.count = 0;
    this.peakInFlight = 0;
  }

  private update(rtt: number): void {
    // 1. Traffic that did not use half the limit tells nothing about it, nor about the latency
    //    under load (a lone request after a burst is fast, and would make every later one look slow).
    if (this.peakInFlight < this.limitValue / 2) return;
    // 2. The baseline: down fast (a fifth of the gap per window), up slowly.
    if (this.baseline === 0) this.baseline = rtt;
    else if (rtt < this.baseline) this.baseline += (rtt - this.baseline) * BASELINE_FALL;
    else this.baseline += (rtt - this.baseline) * this.o.baselineRise;
    // 3. Gradient: 1 while the RTT is within tolerance, down to 0.5 as it rises past it.
    const gradient = Math.max(0.5, Math.min(1, (this.o.tolerance * this.baseline) / Math.max(rtt, 1e-6)));
    // 4. Latency at the baseline (nothing queues): the limit doubles, so a limit a burst pulled down
    //    comes back within a second of it (as TCP's slow start); within tolerance, √limit of
    //    headroom, so a slow function can get down to 1; past it, the gradient shrinks it.
    let target: number;
    if (gradient < 1) target = this.limitValue * gradient;
    else if (rtt <= this.baseline * AT_BASELINE) target = this.limitValue * 2;
    else target = this.limitValue + Math.sqrt(this.limitValue);
    this.set(this.limitValue * (1 - this.o.smoothing) + target * this.o.smoothing);
  }

  private set(value: number): void {
    this.limitValue = Math.min(this.o.max, Math.max(this.o.min, value));
    this.limit = Math.max(this.o.min, Math.floor(this.limitValue));
  }
}
