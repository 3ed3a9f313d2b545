/**
 * The reconciler of Database, KeyValue, Queue and Bucket objects: applying one creates what its
 * backend needs (a database, a stream, a bucket) and, for a Database, applies its migrations once
 * each; status says which backend serves it and whether it is healthy. Deleting an object keeps
 * its data unless it was deleted with --purge (the API marks it with the purge annotation first).
 */
import type { AnyBindingKind } from '../../bindings/kind.js';
import type { Provider, ResourceRef } from '../../bindings/provider.js';
import { ALL_BINDING_KINDS, kindOfResource, type Providers } from '../../bindings/registry.js';
import { type KObject, setCondition } from '../../resources/meta.js';
import { recordEvent } from '../events.js';
import type { Registry } from '../registry.js';
import type { Watch } from '../store/interface.js';

/** Set on an object just before it is deleted, when its data must go with it. */
export const PURGE_ANNOTATION = 'kylix.dev/purge-on-delete';

/** See the file comment. */
export class ResourceController {
  private watch?: Watch;
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly registry: Registry,
    private readonly providers: Providers,
    private readonly note: (message: string) => void = (m) => console.error(m),
  ) {}

  /** Reconciles every resource, then follows changes. */
  async start(): Promise<void> {
    this.watch = this.registry.store.watch(await this.registry.store.currentVersion(), (e) => {
      if (!kindOfResource(e.object.kind)) return;
      // Status writes come back as MODIFIED events; act only on spec changes and deletions.
      if (e.type === 'MODIFIED' && e.object.status?.observedGeneration === e.object.metadata.generation)
        return;
      this.enqueue(e.object, e.type === 'DELETED');
    });
    for (const kind of ALL_BINDING_KINDS)
      for (const o of await this.registry.list(kind.resourceKind, undefined)) this.enqueue(o, false);
    await Promise.all(this.chains.values());
  }

  stop(): void {
    this.watch?.close();
  }

  /** Resolves when every queued reconcile has finished (for tests and apply --wait). */
  async settled(): Promise<void> {
    await Promise.all(this.chains.values());
  }

  private enqueue(object: KObject, deleted: boolean): void {
    const key = `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`;
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => (deleted ? this.remove(object) : this.reconcile(object)))
      .catch((err) =>
        this.note(`kylix: reconciling ${key} failed: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
  }

  private async provider(resourceKind: string): Promise<{ kind: AnyBindingKind; provider: Provider }> {
    const kind = kindOfResource(resourceKind);
    if (!kind) throw new Error(`no provider for ${resourceKind}`);
    return { kind, provider: await this.providers[kind.name]() };
  }

  /** 1. ensure the backend has it, 2. what else its spec asks for (migrations), 3. write status. */
  private async reconcile(seen: KObject): Promise<void> {
    const current = await this.registry.store.get(seen.kind, seen.metadata.namespace, seen.metadata.name);
    if (!current) return;
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
      await recordEvent(this.registry, current, 'Warning', 'BackendFailed', message);
      await this.setStatus(current, {
        backend,
        conditions: { status: 'False', reason: 'BackendFailed', message },
      });
      return;
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
    if (o.metadata.annotations?.[PURGE_ANNOTATION] !== 'true') return;
    const { provider } = await this.provider(o.kind);
    await provider.purge({ namespace: o.metadata.namespace, name: o.metadata.name });
  }
}
