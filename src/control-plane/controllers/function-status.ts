/**
 * The status the Function controller writes: a Function's Ready condition (for the generation it
 * looked at, with that generation's code and, while it serves, its routes and traffic), and each
 * Revision's Ready condition (whether it started on this node, and why not).
 */
import type { FunctionSpec } from '../../resources/kinds.js';
import { type KObject, setCondition } from '../../resources/meta.js';
import { codeDigestOf } from '../bundles.js';
import type { Registry } from '../registry.js';
import type { TrafficEntry } from './function-traffic.js';
import type { RevisionSpec } from './revisions.js';

/** A Ready condition as the reconciler decides it (the time of the transition is added on write). */
export interface ReadyCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** Writes a Function's Ready condition and the `extra` status fields it comes with. */
export async function setFunctionStatus(
  registry: Registry,
  fn: KObject,
  ready: ReadyCondition,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await registry.writeStatus('Function', fn.metadata.namespace, fn.metadata.name, (current) => {
    // Only act on the generation we looked at; a newer one is queued already.
    if (current.metadata.generation !== fn.metadata.generation) return current.status;
    return {
      ...current.status,
      ...extra,
      observedGeneration: fn.metadata.generation,
      // The code of that generation, whichever way it was given (source, code or bundle): one
      // field the BUNDLE column reads, in kylix get and as a CRD printer column alike.
      ...withBundle(codeDigestOf(fn.spec as FunctionSpec)),
      conditions: setCondition(current.status?.conditions, { type: 'Ready', ...ready }),
    };
  });
}

/** Writes a Revision's Ready condition. */
export async function setRevisionReady(
  registry: Registry,
  revision: KObject,
  status: 'True' | 'False',
  reason: string,
  message: string,
): Promise<void> {
  await registry.writeStatus('Revision', revision.metadata.namespace, revision.metadata.name, (r) => ({
    ...r.status,
    conditions: setCondition(r.status?.conditions, { type: 'Ready', status, reason, message }),
  }));
}

/**
 * The status of a function that serves: Ready, or not when its newest revision (`latest`) failed to
 * start with `failure` and revision `latestReady` serves instead; its routes (those of `rev`, the
 * newest ready revision) and its traffic, each entry by revision number.
 */
export function servingStatus(
  rev: RevisionSpec,
  traffic: TrafficEntry[],
  latest: number,
  latestReady: number,
  failure: string | undefined,
): { condition: ReadyCondition; extra: Record<string, unknown> } {
  const routes = rev.routes.map((r) => `${r.methods ? r.methods.join(',') : '*'} ${r.host ?? ''}${r.path}`);
  const trafficStatus = traffic.map((t) => ({
    revision: t.latestRevision ? latestReady : t.revision,
    percent: t.percent,
    ...(t.tag ? { tag: t.tag } : {}),
    ...(t.latestRevision ? { latestRevision: true } : {}),
  }));
  const split = trafficStatus.map((t) => `${t.revision}=${t.percent}%`).join(' ');
  const condition: ReadyCondition = failure
    ? {
        status: 'False',
        reason: 'RevisionFailed',
        message: `Revision ${latest} failed to start: ${failure} Revision ${latestReady} keeps serving (traffic: ${split}).`,
      }
    : {
        status: 'True',
        reason: 'RevisionReady',
        message: `Revision ${latestReady} is ready; traffic: ${split}.`,
      };
  return {
    condition,
    extra: {
      latestCreatedRevision: latest,
      latestReadyRevision: latestReady,
      routes,
      traffic: trafficStatus,
    },
  };
}

/** `{ bundle }` when there is a digest, else nothing (no key holding undefined in a status). */
function withBundle(digest: string | undefined): { bundle?: string } {
  return digest === undefined ? {} : { bundle: digest };
}
