/**
 * The reconciler of Database, KeyValue, Queue and Bucket objects: applying one creates what its
 * backend needs (a database, a stream, a bucket) and, for a Database, applies its migrations once
 * each; status says which backend serves it and whether it is healthy. Deleting an object keeps
 * its data unless it was deleted with --purge (the API marks it with the purge annotation first).
 * Where the store keeps finalizers (Kubernetes), an object with the annotation also carries the
 * PURGE_FINALIZER, so a deletion made while no node runs (kubectl delete) is purged when one
 * starts: the object waits, marked deleted, until a node has purged its data and let it go.
 * Each kind reaches it through an informer; reconciles run from one work queue, one at a time per
 * object, and a backend that fails is tried again with backoff.
 */
import type { AnyBindingKind } from '../../bindings/kind.js';
import type { Provider, ResourceRef } from '../../bindings/provider.js';
import { ALL_BINDING_KINDS, kindOfResource, type Providers } from '../../bindings/registry.js';
import { type KObject, setCondition } from '../../resources/meta.js';
import type { Clock } from '../clock.js';
import { recordEvent } from '../events.js';
import { Informer } from '../informer.js';
import type { Registry } from '../registry.js';
import { type ControllerObserver, WorkQueue } from '../work-queue.js';

/** Set on an object just before it is deleted, when its data must go with it. */
export const PURGE_ANNOTATION = 'kylix.dev/purge-on-delete';
/** Holds a deleted object with the annotation until its data is purged (stores with finalizers). */
export const PURGE_FINALIZER = 'kylix.dev/purge';

const purgeWanted = (o: KObject) => o.metadata.annotations?.[PURGE_ANNOTATION] === 'true';
const holdsPurge = (o: KObject) => o.metadata.finalizers?.includes(PURGE_FINALIZER) === true;

const keyOf = (o: KObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

/** See the file comment. */
export class ResourceController {
  /** One informer per kind, each with its cache of that kind's objects. */
  private readonly informers = new Map<string, Informer>();
  /** Keys are "kind/namespace/name". */
  private readonly work: WorkQueue;
  /** Deleted objects whose removal has not run yet (it runs before a re-created one is provisioned). */
  private readonly deleted = new Map<string, KObject>();

  constructor(
    private readonly registry: Registry,
    private readonly providers: Providers,
    private readonly note: (message: string) => void = (m) => console.error(m),
    clock?: Clock,
    observe?: ControllerObserver,
  ) {
    this.work = new WorkQueue({
      work: (key) => this.sync(key),
      observe: observe && ((s, failed) => observe('resource', s, failed)),
      onError: (key, err, retryInMs) =>
        this.note(
          `kylix: reconciling ${key} failed (retrying in ${Math.round(retryInMs / 100) / 10} s): ${err instanceof Error ? err.message : String(err)}`,
        ),
      clock,
    });
    for (const { resourceKind: kind } of ALL_BINDING_KINDS) {
      this.informers.set(
        kind,
        new Informer({
          source: registry.store,
          kind,
          clock,
          onError: (err, retryInMs) =>
            this.note(
              `kylix: watching ${kind}s failed; trying again in ${retryInMs} ms: ${err instanceof Error ? err.message : String(err)}`,
            ),
          handlers: {
            add: (o) => this.work.add(keyOf(o)),
            // Status writes come back as updates; act only on spec changes, and on a deletion
            // or purge annotation the finalizer has not caught up with.
            update: (_previous, o) => {
              if (o.status?.observedGeneration !== o.metadata.generation || this.finalizerDue(o))
                this.work.add(keyOf(o));
            },
            delete: (o) => {
              this.deleted.set(keyOf(o), o);
              this.work.add(keyOf(o));
            },
          },
        }),
      );
    }
  }

  /** Reconciles every resource, then follows changes. */
  async start(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    await this.work.settled();
  }

  stop(): void {
    for (const i of this.informers.values()) i.stop();
    this.work.stop();
  }

  /**
   * Whether the object is in its kind's cache while that cache is being kept current: it exists, as
   * of the last watch event. False (ask the store) while the watch is down or stopped, so a deletion
   * the cache has not seen cannot keep a resource usable.
   */
  has(kind: string, namespace: string, name: string): boolean {
    const informer = this.informers.get(kind);
    return informer?.watching === true && informer.get(namespace, name) !== undefined;
  }

  /** Resolves when every queued reconcile has finished (for tests and apply --wait). */
  settled(): Promise<void> {
    return this.work.settled();
  }

  /** 1. a deletion not yet handled first (its purge), 2. the object as the cache has it now. */
  private async sync(key: string): Promise<void> {
    const gone = this.deleted.get(key);
    if (gone) {
      await this.remove(gone);
      // A newer deletion may have replaced it meanwhile; that one still runs.
      if (this.deleted.get(key) === gone) this.deleted.delete(key);
    }
    const [kind, namespace, name] = key.split('/') as [string, string, string];
    const current = this.informers.get(kind)?.get(namespace, name);
    if (!current) return;
    if (current.metadata.deletionTimestamp !== undefined) {
      // Deleted, held by finalizers: purge if it asked to, then let it go (never provision it again).
      if (!holdsPurge(current)) return;
      await this.remove(current);
      await this.registry.setFinalizers(
        current,
        (current.metadata.finalizers ?? []).filter((f) => f !== PURGE_FINALIZER),
      );
      return;
    }
    if (this.finalizerDue(current)) {
      const others = (current.metadata.finalizers ?? []).filter((f) => f !== PURGE_FINALIZER);
      await this.registry.setFinalizers(
        current,
        purgeWanted(current) ? [...others, PURGE_FINALIZER] : others,
      );
    }
    await this.reconcile(current);
  }

  /** Whether the object's purge finalizer must be added, taken off, or acted on (a deletion). */
  private finalizerDue(o: KObject): boolean {
    if (!this.registry.store.finalizers) return false;
    if (o.metadata.deletionTimestamp !== undefined) return holdsPurge(o);
    return purgeWanted(o) !== holdsPurge(o);
  }

  private async provider(resourceKind: string): Promise<{ kind: AnyBindingKind; provider: Provider }> {
    const kind = kindOfResource(resourceKind);
    if (!kind) throw new Error(`no provider for ${resourceKind}`);
    return { kind, provider: await this.providers[kind.name]() };
  }

  /**
   * 1. ensure the backend has it, 2. what else its spec asks for (migrations), 3. write status. A backend failure is
   * written to status, then thrown, so the queue tries again with backoff.
   */
  private async reconcile(current: KObject): Promise<void> {
    const ref: ResourceRef = { namespace: current.metadata.namespace, name: current.metadata.name };
    let backend = 'unknown';
    let provisioned: Record<string, unknown> | undefined;
    try {
      const { kind, provider } = await this.provider(current.kind);
      backend = provider.name;
      await provider.ensure(ref);
      const done = await kind.provision?.(provider, ref, current.spec);
      if (done?.event)
        await recordEvent(this.registry, current, 'Normal', done.event.reason, done.event.message);
      provisioned = done?.status;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Retries of the same failure add no new Event.
      const ready = current.status?.conditions?.find((c) => c.type === 'Ready');
      if (!(ready?.reason === 'BackendFailed' && ready.message === message))
        await recordEvent(this.registry, current, 'Warning', 'BackendFailed', message);
      await this.setStatus(current, {
        backend,
        conditions: { status: 'False', reason: 'BackendFailed', message },
      });
      throw err;
    }
    await this.setStatus(current, {
      backend,
      ...provisioned,
      conditions: { status: 'True', reason: 'Provisioned', message: `Served by the ${backend} backend.` },
    });
  }

  private async setStatus(
    o: KObject,
    s: {
      backend: string;
      /** Whatever the kind's provision() reported (a Database's migrations). */
      [field: string]: unknown;
      conditions: { status: 'True' | 'False'; reason: string; message: string };
    },
  ): Promise<void> {
    await this.registry.writeStatus(o.kind, o.metadata.namespace, o.metadata.name, (current) => {
      if (current.metadata.generation !== o.metadata.generation) return current.status;
      const { conditions, ...rest } = s;
      return {
        ...current.status,
        ...rest,
        observedGeneration: o.metadata.generation,
        conditions: setCondition(current.status?.conditions, { type: 'Ready', ...conditions }),
      };
    });
  }

  /** Deleted: the data stays unless the object carried the purge annotation. */
  private async remove(o: KObject): Promise<void> {
    if (!purgeWanted(o)) return;
    const { provider } = await this.provider(o.kind);
    await provider.purge({ namespace: o.metadata.namespace, name: o.metadata.name });
  }
}
