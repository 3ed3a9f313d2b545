/**
 * The supervisor side of bindings: every env.X call from a function arrives here as a small
 * request (binding name, operation, arguments) and is checked before any backend is touched —
 * the binding must be in the revision's manifest, the resource must exist in the function's own
 * namespace, the operation must be one the kind has, and the arguments must have the right shape.
 * A function therefore reaches only what its manifest binds; the supervisor enforces it. The
 * kinds, their operations and argument shapes come from the registry (registry.ts).
 */
import type { Registry } from '../control-plane/registry.js';
import { KylixError } from '../errors.js';
import type { BindingKindName } from '../resources/binding-kinds.js';
import type { FunctionSpec } from '../resources/kinds.js';
import { issuesToCauses } from '../resources/validate.js';
import { checkArgumentSize } from './call-budget.js';
import { scopedKey } from './identity.js';
import type { AnyBindingKind, CallContext, Handles, Operation } from './kind.js';
import type { ResourceRef } from './provider.js';
import { BINDING_KINDS, implicitBinding, type Providers } from './registry.js';

export type { Providers } from './registry.js';

/** One call from a function. */
export interface BindingRequest {
  binding: string;
  op: string;
  args: unknown[];
}

/** Whether a resource exists, answered from memory. */
export interface KnownResources {
  has(kind: string, namespace: string, name: string): boolean;
}

/** Who is calling: the function's namespace and the bindings of the revision it runs. */
export interface BindingScope {
  namespace: string;
  functionName: string;
  bindings: FunctionSpec['bindings'];
}

/** See the file comment. */
export class BindingBroker {
  /** Open handles (transactions…) by kind and handle, and the function that opened each: nobody else may use them. */
  private readonly handles = new Map<string, string>();
  /** Providers once opened, so a call to one needs no await to find it. */
  private readonly opened = new Map<BindingKindName, unknown>();

  constructor(
    private readonly registry: Registry,
    private readonly providers: Providers,
    /**
     * The resources known to exist, from a cache the store's watch keeps current (the resource
     * controller's informers). A call whose resource is in it skips the store read; one that is
     * not (just created, on a node whose watch has not delivered it yet) reads the store.
     */
    private readonly known?: KnownResources,
  ) {}

  /** Checks and runs one call; rejects with ERR_BINDING_* for anything the function may not do. */
  call(scope: BindingScope, req: BindingRequest, traceparent?: string): Promise<unknown> {
    // Not an async function: a call whose resource and provider are known goes to the provider
    // with no await of its own (each was a promise and a suspended frame per call).
    try {
      return this.check(scope, req, traceparent);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private check(scope: BindingScope, req: BindingRequest, traceparent?: string): Promise<unknown> {
    // 0. Before anything walks the arguments: their size, counted as a walk would pay for it.
    checkArgumentSize(req.args, req.binding, req.op);
    const implicit = implicitBinding(req.binding);
    if (implicit) return this.callImplicit(scope, implicit, req);
    // Own bindings only: a call naming "__proto__" or "toString" finds no inherited object.
    const binding = Object.hasOwn(scope.bindings, req.binding) ? scope.bindings[req.binding] : undefined;
    if (!binding)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${scope.functionName} has no binding named ${req.binding}. Add it to spec.bindings.`,
      );
    if ('secret' in binding)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${req.binding} is a secret; its value is in env.${req.binding}.`,
      );
    // 1. the operation belongs to the kind, 2. the arguments have its shape,
    // 3. the resource exists in the function's namespace, 4. the provider runs it.
    const name = bindingKindOf(binding);
    const kind: AnyBindingKind = BINDING_KINDS[name];
    const op = Object.hasOwn(kind.ops, req.op) ? kind.ops[req.op] : undefined;
    if (!op)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${kind.resourceKind} bindings have no operation "${req.op}".`,
      );
    const parsed = op.args.safeParse(req.args);
    if (!parsed.success)
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `env.${req.binding}.${req.op}() was called with arguments of the wrong shape.`,
        issuesToCauses(parsed.error.issues, 'arguments'),
      );
    const ref: ResourceRef = { namespace: scope.namespace, name: (binding as Record<string, string>)[name]! };
    const context: CallContext = {
      ref,
      handles: new OwnerHandles(this.handles, name, scope),
      ...(traceparent ? { traceparent } : {}),
    };
    if (this.known?.has(kind.resourceKind, ref.namespace, ref.name))
      return this.run(name, op, parsed.data, context);
    return this.registry.store.get(kind.resourceKind, ref.namespace, ref.name).then((found) => {
      if (!found)
        throw new KylixError(
          'ERR_BINDING_DENIED',
          `${req.binding} is bound to ${kind.resourceKind} "${ref.name}", which does not exist in namespace "${ref.namespace}". Apply it first.`,
        );
      return this.run(name, op, parsed.data, context);
    });
  }

  /** Runs a checked operation on the kind's provider (opened on first use, then kept). */
  private run(
    name: BindingKindName,
    op: Operation<unknown>,
    args: unknown[],
    context: CallContext,
  ): Promise<unknown> {
    const provider = this.opened.get(name);
    if (provider) return op.run(provider, args, context);
    return this.providers[name]().then((p) => {
      this.opened.set(name, p);
      return op.run(p, args, context);
    });
  }

  /**
   * A call to a capability every function has (`caches`): its space is the one of the caller's
   * namespace, as the channel says it, whatever the call carries.
   */
  private callImplicit(
    scope: BindingScope,
    kind: NonNullable<ReturnType<typeof implicitBinding>>,
    req: BindingRequest,
  ): Promise<unknown> {
    const op: Operation<unknown> | undefined = Object.hasOwn(kind.ops, req.op)
      ? (kind.ops as Record<string, Operation<unknown>>)[req.op]
      : undefined;
    if (!op) throw new KylixError('ERR_BINDING_DENIED', `${req.binding} has no operation "${req.op}".`);
    const parsed = op.args.safeParse(req.args);
    if (!parsed.success)
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `${req.binding.slice(1)}.${req.op}() was called with arguments of the wrong shape.`,
        issuesToCauses(parsed.error.issues, 'arguments'),
      );
    return this.run(kind.provider, op, parsed.data, {
      ref: kind.ref(scope.namespace),
      handles: new OwnerHandles(this.handles, kind.provider, scope),
    });
  }
}

/** The kind a binding names: its one key (`{ keyValue: "cache" }` → "keyValue"). */
function bindingKindOf(binding: object): BindingKindName {
  for (const key in binding) if (Object.hasOwn(binding, key)) return key as BindingKindName;
  throw new KylixError('ERR_BINDING_DENIED', 'A binding names no kind.');
}

/**
 * The timers of handles granted for a time, by key (kind and handle), cleared when the handle is
 * released first. Handles are random ids, unique over all brokers of the process.
 */
const HANDLE_EXPIRIES = new Map<string, NodeJS.Timeout>();

/** The handles of one kind as one function sees them: only those it opened (see BindingBroker.handles). */
class OwnerHandles implements Handles {
  constructor(
    private readonly all: Map<string, string>,
    private readonly kind: BindingKindName,
    private readonly scope: BindingScope,
  ) {}

  private key(handle: string): string {
    return `${this.kind}\n${handle}`;
  }

  private get owner(): string {
    return scopedKey(this.scope.namespace, this.scope.functionName);
  }

  grant(handle: string, forMs?: number): void {
    const key = this.key(handle);
    const owner = this.owner;
    this.all.set(key, owner);
    if (forMs === undefined) return;
    const timer = setTimeout(() => {
      HANDLE_EXPIRIES.delete(key);
      if (this.all.get(key) === owner) this.all.delete(key);
    }, forMs);
    timer.unref();
    HANDLE_EXPIRIES.set(key, timer);
  }

  owns(handle: string): boolean {
    return this.all.get(this.key(handle)) === this.owner;
  }

  release(handle: string): void {
    const key = this.key(handle);
    this.all.delete(key);
    clearTimeout(HANDLE_EXPIRIES.get(key));
    HANDLE_EXPIRIES.delete(key);
  }
}
