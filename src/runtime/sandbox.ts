/**
 * The one interface tenant code runs behind. The runtime asks a Sandbox for instances and talks to
 * each over its channel (instance-channel.ts); how the sandbox isolates them (sandbox processes
 * under bubblewrap and cgroups, with an egress proxy: see namespace-sandbox.ts and isolation/) stays
 * behind it.
 */
import type { RevisionKey, RevisionLimits } from '../resources/serving.js';
import type { InstanceSpec } from '../sandbox/protocol.js';
import type { InstanceChannel, InstanceHooks } from './instance-channel.js';

/** A started instance, ready for requests on its channel. */
export interface SandboxInstance {
  id: string;
  channel: InstanceChannel;
  /** How long the module took to load and start serving, inside the sandbox. */
  startupMs: number;
}

/** Events a sandbox reports about its instances. */
export interface SandboxEvents {
  /** The instance stopped without being asked (it crashed, or its process died). */
  exit(instanceId: string, reason: string): void;
}

/** Isolates the instances of one namespace. */
export interface Sandbox {
  /** What isolation this is, for `kylix doctor` and start-up output. */
  readonly kind: string;
  /**
   * Loads the bundle in a new instance of `revision` (whose limits the sandbox enforces); its
   * binding calls and logs go to `hooks`. Rejects with ERR_* when the module fails to load.
   */
  startInstance(
    revision: { key: RevisionKey; limits: RevisionLimits },
    spec: InstanceSpec,
    hooks: InstanceHooks,
  ): Promise<SandboxInstance>;
  /** Stops an instance; resolves once it is gone. */
  stopInstance(id: string): Promise<void>;
  /** The pid of each process running instances, by revision key (for per-revision CPU and memory metrics). */
  processIds?(): Iterable<{ revisionKey: string; pid: number }>;
  /** Stops every instance and the sandbox itself. */
  close(): Promise<void>;
}

/** Makes the sandbox for a namespace (never two namespaces in one sandbox). */
export type SandboxFactory = (namespace: string, events: SandboxEvents) => Sandbox;
