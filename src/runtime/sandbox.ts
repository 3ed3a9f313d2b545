/**
 * The one interface tenant code runs behind. The runtime asks a Sandbox for instances and talks HTTP
 * to each over its Unix socket; how the sandbox isolates them (sandbox processes under bubblewrap
 * and cgroups, with an egress proxy: see process-sandbox.ts and isolation/) stays behind it.
 */
import type { BindingCall, InstanceSpec, LogRecord } from '../sandbox/protocol.js';

/** A started instance, ready for requests on its socket. */
export interface SandboxInstance {
  id: string;
  socketPath: string;
  /** How long the module took to load and start listening, inside the sandbox. */
  startupMs: number;
}

/** Events a sandbox reports about its instances. */
export interface SandboxEvents {
  /** A console.* call of the instance's code. */
  log(instanceId: string, record: LogRecord): void;
  /** The instance stopped without being asked (it crashed, or its process died). */
  exit(instanceId: string, reason: string): void;
  /** A binding call of the instance; resolves with its result or rejects with a message for the function. */
  rpc(instanceId: string, call: BindingCall): Promise<unknown>;
}

/** Isolates the instances of one namespace. */
export interface Sandbox {
  /** What isolation this is, for `kylix doctor` and start-up output. */
  readonly kind: string;
  /** Loads the bundle in a new instance; rejects with ERR_* when the module fails to load. */
  startInstance(spec: InstanceSpec): Promise<SandboxInstance>;
  /** Stops an instance; resolves once it is gone. */
  stopInstance(id: string): Promise<void>;
  /** Stops every instance and the sandbox itself. */
  close(): Promise<void>;
}

/** Makes the sandbox for a namespace (never two namespaces in one sandbox). */
export type SandboxFactory = (namespace: string, events: SandboxEvents) => Sandbox;
