/**
 * What the `kylix dev` terminal shows of functions' logs: every console line and exception, and
 * each request's line (method, path, status, time), as `wrangler dev` does. Under load a function
 * can serve thousands of requests a second; nobody reads that many lines, and writing each one to
 * the terminal cost a tenth of the node's CPU per request (measured). So each function shows its
 * first REQUEST_LINES_PER_S request lines in a second, and the rest of that second is summed up in
 * one line by status, with the command that shows the latest. Every line is still written to the
 * function's log.
 */
import type { LogEntry } from '../resources/api-types.js';

/** Request lines shown per function per second before the rest are summed up. */
export const REQUEST_LINES_PER_S = 20;

/** Writes one line of the terminal. */
export type ShowLine = (namespace: string, fn: string, entry: LogEntry) => void;
/** Writes the summary of the request lines held back in one second. */
export type ShowSummary = (
  namespace: string,
  fn: string,
  held: number,
  byStatus: Map<number, number>,
) => void;

interface Second {
  namespace: string;
  fn: string;
  /** The second (epoch seconds) being counted. */
  at: number;
  shown: number;
  held: number;
  byStatus: Map<number, number>;
}

/** See the file comment. */
export class DevLogPacer {
  private readonly seconds = new Map<string, Second>();
  /** The second entry() counted last. */
  private last?: Second;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly showLine: ShowLine,
    private readonly showSummary: ShowSummary,
    private readonly now: () => number = Date.now,
    private readonly perSecond = REQUEST_LINES_PER_S,
  ) {}

  /** One entry of the log of the function `fn` in `namespace`. */
  entry(namespace: string, fn: string, e: LogEntry): void {
    if (e.invocation === undefined || e.source !== 'platform') {
      this.showLine(namespace, fn, e);
      return;
    }
    const at = Math.floor(this.now() / 1000);
    // Under load one function logs many lines in a row: its second is found without a key built.
    // (One the sweep has dropped is over, so it is summed up and replaced below like any other.)
    const last = this.last;
    let s = last?.namespace === namespace && last.fn === fn ? last : this.seconds.get(`${namespace}/${fn}`);
    if (s && s.at !== at) {
      this.summarise(s);
      s = undefined;
    }
    if (!s) {
      s = { namespace, fn, at, shown: 0, held: 0, byStatus: new Map() };
      this.seconds.set(`${namespace}/${fn}`, s);
    }
    this.last = s;
    if (s.shown < this.perSecond) {
      s.shown++;
      this.showLine(namespace, fn, e);
      return;
    }
    s.held++;
    const status = e.invocation.status;
    s.byStatus.set(status, (s.byStatus.get(status) ?? 0) + 1);
    // A burst that ends leaves its summary behind: a sweep writes it once its second is over.
    this.timer ??= setInterval(() => this.sweep(), 1000).unref();
  }

  /** Writes what is held back (the dev server is stopping). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of this.seconds.values()) this.summarise(s);
    this.seconds.clear();
    this.last = undefined;
  }

  private summarise(s: Second): void {
    if (s.held > 0) this.showSummary(s.namespace, s.fn, s.held, s.byStatus);
    s.held = 0;
    s.byStatus = new Map();
  }

  /** Writes the summaries of seconds that are over (every second while lines are held back). */
  sweep(): void {
    const at = Math.floor(this.now() / 1000);
    for (const [key, s] of this.seconds) {
      if (s.at === at) continue;
      this.summarise(s);
      this.seconds.delete(key);
      if (s === this.last) this.last = undefined;
    }
    if (this.seconds.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** "1,204 more requests in that second (200 × 1,200, 503 × 4)". */
export function summaryLine(held: number, byStatus: Map<number, number>): string {
  const parts = [...byStatus]
    .sort((a, b) => a[0] - b[0])
    .map(([status, n]) => `${status} × ${n.toLocaleString('en-US')}`);
  return `${held.toLocaleString('en-US')} more requests in that second (${parts.join(', ')})`;
}
