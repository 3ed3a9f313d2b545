/**
 * The data the control plane hands to the serving side (the gateway's routing table and the
 * runtime's revisions): pure types and one key constructor, so the Function controller, the
 * gateway and the runtime share them without importing each other.
 */
import type { HTML_HANDLING, NOT_FOUND_HANDLING } from './assets.js';
import type { FunctionSpec } from './kinds.js';

/** A revision's key on this node, "<namespace>/<function>/<number>": make one with revisionKey(). */
export type RevisionKey = string & { readonly __revisionKey: true };

/** The key of revision `number` of function `name` in `namespace`. */
export function revisionKey(namespace: string, name: string, number: number): RevisionKey {
  return `${namespace}/${name}/${number}` as RevisionKey;
}

/** spec.scaling of a revision. */
export interface ScalingPolicy {
  minInstances: number;
  maxInstances: number;
  targetConcurrency: number;
  idleSeconds: number;
}

/** The limits of a revision that its sandbox enforces. */
export interface RevisionLimits {
  /** CPU one request (with the work it leaves running) may use: spec.limits.cpuMs. */
  cpuMs: number;
  /** Where its fetch() may go: spec.egress.allow. */
  egressAllow: string[];
}

/** What the runtime needs to run one revision. */
export interface RevisionTarget {
  key: RevisionKey;
  namespace: string;
  functionName: string;
  revision: number;
  bundlePath: string;
  env: Record<string, string>;
  /** spec.vars: typed vars (numbers, booleans, arrays, objects), env values as they are. */
  vars?: Record<string, unknown>;
  memoryMiB: number;
  limits: RevisionLimits;
  scaling: ScalingPolicy;
  /** spec.bindings of the revision; secrets are already resolved into env. */
  bindings: FunctionSpec['bindings'];
  /** The revision's static assets (spec.assets), for env.ASSETS and env.__STATIC_CONTENT. */
  assets?: ServedAssets;
}

/** One static asset on this node's disk. */
export interface ServedAsset {
  /** The content-addressed file holding it. */
  file: string;
  /** A strong ETag, from its content address. */
  etag: string;
  type: string;
  size: number;
}

/** A revision's static assets as the gateway serves them (see resources/assets.ts). */
export interface ServedAssets {
  /** URL path ("/css/site.css") → file. */
  files: ReadonlyMap<string, ServedAsset>;
  /** The env name of the binding whose fetch() answers from them. */
  binding?: string;
  notFoundHandling: (typeof NOT_FOUND_HANDLING)[number];
  htmlHandling: (typeof HTML_HANDLING)[number];
  runWorkerFirst: boolean;
}

/** A revision's live figures on this node, for `kylix describe`. */
export interface RevisionStats {
  /** Instances running (ready for requests). */
  instances: number;
  /** Instances being started. */
  starting: number;
  inFlight: number;
  coldStarts: number[];
}

/** One revision taking a share of a function's traffic. */
export interface TrafficShare {
  revision: number;
  revisionKey: RevisionKey;
  percent: number;
}

/** Limits the gateway enforces for each request to a function. */
export interface ProxyLimits {
  timeoutMs: number;
  maxRequestBytes: number;
  /** Requests the function may serve at once (spec.limits.maxConcurrency); more get 429. */
  maxConcurrency?: number;
}

/** Where a function's traffic goes right now. */
export interface ServingTarget {
  /** The function's name, for messages. */
  name: string;
  /** Revisions taking traffic; percents add up to 100. */
  shares: TrafficShare[];
  /** Revisions addressable by tag (header kylix-revision, or host prefix "tag--"). */
  tags: Record<string, TrafficShare>;
  limits: ProxyLimits;
  /** Static files the gateway serves for GET and HEAD before the function runs. */
  assets?: ServedAssets;
  /**
   * Why the function cannot serve (its only revision failed to start): its routes answer with
   * this instead of 404, so a caller learns the function is there but broken.
   */
  failure?: string;
}
