/**
 * Traffic: how a Function's spec.traffic becomes what the gateway serves it with — the revisions
 * taking a share of its requests, those reachable by tag, and the limits the gateway enforces.
 */
import type { FunctionSpec } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import { type ProxyLimits, revisionKey } from '../../resources/serving.js';
import type { TrafficShare } from '../serving.js';
import { revSpec } from './revisions.js';

/** One entry of spec.traffic: a revision (by number, or the latest ready one), its percent, a tag. */
export type TrafficEntry = NonNullable<FunctionSpec['traffic']>[number];

/** spec.traffic, or all of it to the newest ready revision when the spec says nothing. */
export function trafficOf(spec: FunctionSpec): TrafficEntry[] {
  return spec.traffic ?? [{ latestRevision: true, percent: 100 }];
}

/** The gateway's split of a function's traffic, or why there is none (for its Ready condition). */
export type TrafficSplit =
  | { shares: TrafficShare[]; tags: Record<string, TrafficShare> }
  | { problem: { reason: 'RevisionMissing' | 'RevisionFailed'; message: string } };

/**
 * Resolves each entry of `traffic` to one of the function's `revisions` and starts it (`start` says
 * why it could not), in order; the first entry whose revision does not exist or start stops it.
 */
export async function resolveTraffic(
  fn: KObject,
  traffic: TrafficEntry[],
  revisions: KObject[],
  latestReady: number,
  start: (revision: KObject) => Promise<string | undefined>,
): Promise<TrafficSplit> {
  const { namespace, name } = fn.metadata;
  const byNumber = new Map(revisions.map((r) => [revSpec(r).number, r]));
  const shares: TrafficShare[] = [];
  const tags: Record<string, TrafficShare> = {};
  for (const t of traffic) {
    const number = t.latestRevision ? latestReady : (t.revision ?? latestReady);
    const revision = byNumber.get(number);
    if (!revision) {
      return {
        problem: {
          reason: 'RevisionMissing',
          message: `spec.traffic names revision ${number}, which does not exist (kylix rollout history ${name} lists them).`,
        },
      };
    }
    const problem = await start(revision);
    if (problem) {
      return {
        problem: {
          reason: 'RevisionFailed',
          message: `Revision ${number}, named in spec.traffic, failed to start: ${problem}`,
        },
      };
    }
    const share: TrafficShare = {
      revision: number,
      revisionKey: revisionKey(namespace, name, number),
      percent: t.percent,
    };
    if (t.percent > 0) shares.push(share);
    if (t.tag) tags[t.tag] = share;
  }
  return { shares, tags };
}

/** The limits the gateway enforces on a function's requests, from spec.limits (a function's or a revision's). */
export function proxyLimits(limits: FunctionSpec['limits']): ProxyLimits {
  return {
    timeoutMs: limits.timeoutMs,
    maxRequestBytes: limits.maxRequestBytes,
    maxConcurrency: limits.maxConcurrency,
  };
}
