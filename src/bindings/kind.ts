/**
 * What a binding kind declares about itself, as a miniflare plugin does: each kind's folder
 * (src/bindings/<kind>/kind.ts) exports one BindingKind, and src/bindings/registry.ts gathers them.
 * The broker, the providers, the resource controller, the data API and the installation config
 * read their lists from there instead of naming the kinds one by one.
 */
import type { z } from 'zod';
import type { BINDING_RESOURCE_KINDS, BindingKindName } from '../resources/binding-kinds.js';
import type { Provider, ResourceRef } from './provider.js';

/**
 * Handles a function opened through its binding (a transaction id): only that function may use
 * them, until they are released. The broker keeps them, per function and kind.
 */
export interface Handles {
  /** Gives the calling function the handle; with `forMs`, it is forgotten after that long even if never released. */
  grant(handle: string, forMs?: number): void;
  owns(handle: string): boolean;
  release(handle: string): void;
}

/** What an operation is given beside the provider and its checked arguments. */
export interface CallContext {
  /** The resource the binding names, in the calling function's namespace (already checked). */
  ref: ResourceRef;
  handles: Handles;
  /** The W3C traceparent of the call's span when tracing is on, for kinds that carry it (a queue message). */
  traceparent?: string;
}

/** One operation a binding object may call: the shape of its arguments, and what it does with them. */
export interface Operation<P> {
  /** Anything else is refused with ERR_BINDING_BAD_ARGUMENTS before a backend runs. */
  readonly args: z.ZodType<unknown[]>;
  /** Calls the provider, and shapes the result to cross the sandbox boundary. */
  run(provider: P, args: unknown[], call: CallContext): Promise<unknown>;
}

/** `operation(argsSchema, run)` for a kind whose provider is P: run receives the parsed arguments, typed. */
export function operations<P>() {
  return <S extends z.ZodType<unknown[]>>(
    args: S,
    run: (provider: P, args: z.output<S>, call: CallContext) => Promise<unknown>,
  ): Operation<P> => ({ args, run: run as Operation<P>['run'] });
}

/** Status fields and an event that provisioning beyond ensure() produced (a Database's migrations). */
export interface Provisioned {
  status?: Record<string, unknown>;
  /** A Normal event to record, when something was done. */
  event?: { reason: string; message: string };
}

/** One binding kind: see the file comment. */
export interface BindingKind<
  N extends BindingKindName,
  P extends Provider,
  S extends z.ZodType<{ provider: string }>,
> {
  /** The manifest binding key, and the kind's name in the installation config and the registry. */
  readonly name: N;
  /** The resource kind a binding of this kind names. */
  readonly resourceKind: (typeof BINDING_RESOURCE_KINDS)[N];
  /** Its section of the installation config (`backends.<name>`), defaulting to the embedded provider. */
  readonly config: S;
  /** Env vars that switch the kind to a fleet backend: the section each one sets. */
  readonly env: Readonly<Record<string, (value: string, env: NodeJS.ProcessEnv) => z.input<S>>>;
  /**
   * Opens the configured provider, importing its module (and driver) only now. Embedded providers
   * keep their data under `dataDir`, the node's data folder, unless the config names a folder.
   */
  open(config: z.output<S>, dataDir: string): Promise<P>;
  /** After the provider ensured a resource: anything else its spec asks for (migrations). */
  provision?(provider: P, ref: ResourceRef, spec: unknown): Promise<Provisioned | undefined>;
  /** The operations a binding object may call, by name. */
  readonly ops: Readonly<Record<string, Operation<P>>>;
}

/** Any kind, for code that handles every kind alike. */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds kinds of different provider and config types.
export type AnyBindingKind = BindingKind<BindingKindName, any, any>;

/**
 * A capability every function has without naming it in its manifest (the Workers `caches`): the
 * guest calls it under a binding name no manifest can use, and the broker runs it on the provider
 * of kind `provider`, against the calling function's namespace space `ref(namespace)` — always
 * derived from the channel's revision, never from the call.
 */
export interface ImplicitBindingKind<N extends BindingKindName, P extends Provider> {
  /** What the guest sends as the binding name: not an env var name, so no manifest binding has it. */
  readonly binding: string;
  /** The kind whose configured provider serves it (its backend is the installation's choice). */
  readonly provider: N;
  /** The space of the calling function's namespace. */
  ref(namespace: string): ResourceRef;
  readonly ops: Readonly<Record<string, Operation<P>>>;
}
