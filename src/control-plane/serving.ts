/**
 * What the control plane needs from the serving side (the gateway's routing table, the runtime's
 * revisions, the triggers), declared here as narrow interfaces: the controllers depend on these,
 * never on the Gateway or Runtime classes. platform.ts passes the real objects; a test may pass
 * fakes.

 * The data the interfaces carry (ServingTarget, TrafficShare, RevisionTarget) is declared in
 * resources/serving.ts, shared by all three.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FunctionSpec, RouteSpec } from '../resources/kinds.js';
import type {
  RevisionKey,
  RevisionStats,
  RevisionTarget,
  ServingTarget,
  TrafficShare,
} from '../resources/serving.js';

export type { RevisionKey, RevisionTarget, ServingTarget, TrafficShare };

/** Where a function's requests go: the gateway's routing table, as the Function controller sees it. */
export interface FunctionRoutes {
  /** `seniority` (the function's creation time) decides who keeps a route two namespaces claim. */
  setFunction(functionKey: string, routes: RouteSpec[], target: ServingTarget, seniority?: string): void;
  removeFunction(functionKey: string): void;
}

/** Starts, counts and stops revisions: the runtime, as the Function controller sees it. */
export interface RevisionRunner {
  has(revisionKey: string): boolean;
  deploy(target: RevisionTarget): Promise<unknown>;
  /** Requests the revision is serving now (drained to 0 before it is retired). */
  inFlight(revisionKey: string): number;
  retire(revisionKey: string): Promise<void>;
}

/** Sends a request to a function whatever its routes say (`kylix invoke`, the API's proxy route). */
export interface FunctionInvoker {
  dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId?: string,
  ): Promise<void>;
}

/** A revision's live figures (instances, in flight, cold starts), for `kylix describe`. */
export interface RevisionStatsSource {
  stats(revisionKey: string): RevisionStats | undefined;
}

/** Told which revision serves a function's triggers (queue batches, scheduled ticks). */
export interface FunctionTriggers {
  serving(namespace: string, name: string, spec: FunctionSpec, revisionKey: string): void;
  removed(namespace: string, name: string): void;
}

/** A handler run by hand (`kylix trigger`): a scheduled tick, or a queue batch of these bodies. */
export type ManualEvent =
  | { kind: 'scheduled'; cron?: string }
  | { kind: 'queue'; messages: unknown[]; queue?: string };

/** Runs a function's scheduled() or queue() handler on demand; resolves with what it answered. */
export interface FunctionEvents {
  fire(namespace: string, name: string, event: ManualEvent): Promise<unknown>;
}
