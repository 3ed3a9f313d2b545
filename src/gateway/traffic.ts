/**
 * Traffic splitting between revisions: smooth weighted round-robin, so a 90/10 split is exact over
 * every ten requests instead of only on average, plus tags that address one revision directly.
 */

import type { TrafficShare } from '../resources/serving.js';

export type { TrafficShare };

/** Picks the revision for each request according to the shares. */
export class TrafficSplit {
  private readonly current: number[];

  constructor(readonly shares: TrafficShare[]) {
    this.current = shares.map(() => 0);
  }

  /** The share for the next request (nginx's smooth weighted round-robin). */
  pick(): TrafficShare | undefined {
    if (this.shares.length <= 1) return this.shares[0];
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.shares.length; i++) {
      const weight = this.shares[i]!.percent;
      total += weight;
      this.current[i]! += weight;
      if (best === -1 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best === -1) return undefined;
    this.current[best]! -= total;
    return this.shares[best];
  }
}

/**
 * Splits "canary--shop.example.com" into the tag and the host the routes are written for, as
 * Knative addresses tagged revisions. Undefined when the host carries no tag prefix.
 */
export function splitTaggedHost(host: string): { tag: string; host: string } | undefined {
  const i = host.indexOf('--');
  if (i <= 0) return undefined;
  return { tag: host.slice(0, i), host: host.slice(i + 2) };
}
