/**
 * Admission control: a function past spec.limits.maxConcurrency gets 429, and a node past its
 * capacity gets 503, both with Retry-After, at once. Nothing queues without bound in the gateway.
 */
import { KylixError } from '../errors.js';

/** Requests one node serves at once, across all functions, unless configured (env KYLIX_MAX_INFLIGHT). */
export const DEFAULT_NODE_CAPACITY = Number(process.env.KYLIX_MAX_INFLIGHT) || 10_000;

/** Counts requests in flight per function and per node. */
export class Admission {
  private readonly perFunction = new Map<string, number>();
  private total = 0;

  constructor(private readonly capacity = DEFAULT_NODE_CAPACITY) {}

  /** Admits a request, or returns the error to answer with; every admitted request must leave(). */
  enter(
    functionKey: string,
    name: string,
    maxConcurrency = Number.POSITIVE_INFINITY,
  ): KylixError | undefined {
    if (this.total >= this.capacity)
      return new KylixError(
        'ERR_OVERLOADED',
        `This node is serving ${this.capacity} requests already. Retry after the Retry-After delay.`,
      );
    const n = this.perFunction.get(functionKey) ?? 0;
    if (n >= maxConcurrency)
      return new KylixError(
        'ERR_TOO_MANY_REQUESTS',
        `${name} is serving ${maxConcurrency} requests already (spec.limits.maxConcurrency). Retry after the Retry-After delay, or raise the limit.`,
      );
    this.perFunction.set(functionKey, n + 1);
    this.total++;
    return undefined;
  }

  leave(functionKey: string): void {
    const n = (this.perFunction.get(functionKey) ?? 1) - 1;
    if (n > 0) this.perFunction.set(functionKey, n);
    else this.perFunction.delete(functionKey);
    this.total--;
  }
}
