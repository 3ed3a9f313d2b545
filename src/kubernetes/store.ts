/**
 * The state store on a Kubernetes API server: the cluster's own storage holds the installation,
 * so `kubectl apply -f` of a Kylix manifest deploys it, as `kylix apply` does. Where each kind
 * lives is in store-kinds.ts (custom resources of group kylix.dev, native Secrets, ConfigMaps for
 * internal kinds).
 *
 * - resourceVersions are the API server's (etcd's revision, one counter for every kind), and every
 *   precondition is the server's own: a create fails with AlreadyExists, an update or delete at a
 *   stale resourceVersion with Conflict;
 * - spec and metadata go through the object, status through the status subresource (a write that
 *   changes only status skips the object);
 * - reads go to the server; watches are served from one list-then-watch per kind (store-stream.ts)
 *   merged into one stream with a history, so any number of informers on a node cost one watch
 *   per kind on the server;
 * - Revisions carry an ownerReference to their Function, so the cluster's garbage collector
 *   deletes them with it, whichever client deleted the Function;
 * - a new Event is written as a core v1 Event too (core-events.ts), so kubectl describe shows it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { SharedBundles } from '../control-plane/bundles.js';
import type { Precondition, Store, Watch, WatchEvent } from '../control-plane/store/interface.js';
import { byNamespaceAndName, notFound, WatchHistory } from '../control-plane/store/shared.js';
import { KylixError } from '../errors.js';
import type { KObject } from '../resources/meta.js';
import { KubeBundles } from './bundles.js';
import {
  KubeClient as Client,
  isStatus,
  type KubeClient,
  type KubeConnectOptions,
  type KubeJson,
  kubeFailure,
} from './client.js';
import { coreEventOf, coreEventsPath } from './core-events.js';
import { LeaseElection, type LeaseTimings } from './lease.js';
import { customSecrets, nativeSecrets, type SealingBox } from './secrets.js';
import { customResources, internalResource, internalStream, type KubeResource } from './store-kinds.js';
import { ResourceStream, rvOf } from './store-stream.js';

/** Options of the Kubernetes store. */
export interface KubernetesStoreOptions extends KubeConnectOptions {
  /** The node's keyring: Secrets are sealed in memory as everywhere in the control plane. */
  secrets: SealingBox;
  /** How many changes watches may resume from (default 10,000). */
  history?: number;
  /** Told when a kind's watch fails and will be tried again. */
  onWatchError?: (kind: string, err: unknown, retryInMs: number) => void;
  /**
   * The installation's own namespace on the cluster: leader Leases and bundle ConfigMaps
   * (backends.state.namespace; default kylix-system). Tenant objects stay in their own namespaces.
   */
  namespace?: string;
}

/** Connects, checks that the CRDs are installed, and starts following every kind. */
export async function openKubernetesStore(options: KubernetesStoreOptions): Promise<KubernetesStore> {
  const client = await Client.connect(options);
  const store = new KubernetesStore(client, options);
  try {
    await store.open();
  } catch (err) {
    await store.close();
    throw kubeFailure(err, `Opening the state store (Kubernetes API server at ${client.server})`);
  }
  return store;
}

/** The store; see the file comment. */
export class KubernetesStore implements Store {
  readonly name = 'kubernetes';
  readonly finalizers = true;
  /** Where bundles uploaded through Kylix's API are kept for every node. */
  readonly bundles: KubeBundles & SharedBundles;
  /** The resources of each kind, read in order (Secret: the native one first). */
  private readonly byKind = new Map<string, KubeResource[]>();
  private readonly streams: ResourceStream[] = [];
  private readonly history: WatchHistory;
  private readonly listeners = new Set<{ since: number; deliver: (e: WatchEvent) => void }>();
  /** The newest resourceVersion handed to watchers. */
  private newest = 0;
  /** The last version of each object this store returned, to tell a status-only write. */
  private readonly known = new Map<string, KObject>();
  private readonly elections = new Set<LeaseElection>();

  constructor(
    readonly client: KubeClient,
    private readonly options: KubernetesStoreOptions,
  ) {
    this.history = new WatchHistory(options.history ?? 10_000);
    this.bundles = new KubeBundles(client, options.namespace);
    for (const r of customResources()) this.byKind.set(r.kind, [r]);
    this.byKind.set('Secret', [nativeSecrets(options.secrets), customSecrets(options.secrets)]);
  }

  /** Lists every kind (failing when a CRD is missing), then watches them all. */
  async open(): Promise<void> {
    const sources = [...[...this.byKind.values()].flat(), internalStream()];
    for (const r of sources)
      this.streams.push(
        new ResourceStream(
          this.client,
          r,
          (e) => this.deliver(e),
          (err, ms) => this.options.onWatchError?.(r.kind, err, ms),
        ),
      );
    await Promise.all(this.streams.map((s) => s.start()));
  }

  async currentVersion(): Promise<string> {
    // A list read from etcd answers with etcd's current revision, the one counter of every kind.
    const [fn] = this.resources('Function');
    try {
      const list = await this.client.request<{ metadata: { resourceVersion: string } }>(
        'GET',
        fn!.listPath(),
        {
          query: { limit: '1' },
        },
      );
      return list.metadata.resourceVersion;
    } catch (err) {
      throw kubeFailure(err, 'Reading the current resourceVersion');
    }
  }

  async get(kind: string, namespace: string, name: string): Promise<KObject | undefined> {
    for (const r of this.resources(kind)) {
      try {
        const o = r.toKylix(await this.client.request('GET', r.itemPath(namespace, name)));
        if (o) return this.remember(o);
      } catch (err) {
        if (!isStatus(err, 404)) throw kubeFailure(err, `Reading ${kind} "${namespace}/${name}"`);
      }
    }
    return undefined;
  }

  async list(kind: string, namespace?: string): Promise<KObject[]> {
    const byName = new Map<string, KObject>();
    for (const r of this.resources(kind)) {
      let items: KubeJson[];
      try {
        items = (
          await this.client.request<{ items: KubeJson[] }>('GET', r.listPath(namespace), {
            query: { ...r.selectors },
          })
        ).items;
      } catch (err) {
        throw kubeFailure(err, `Listing ${kind}s`);
      }
      for (const item of items) {
        const o = r.toKylix(item);
        const key = o && `${o.metadata.namespace}/${o.metadata.name}`;
        // Of a native Secret and a kylix.dev Secret of one name, the native one counts.
        if (o && key && !byName.has(key)) byName.set(key, this.remember(o));
      }
    }
    return [...byName.values()].sort(byNamespaceAndName);
  }

  async put(object: KObject, pre: Precondition = {}): Promise<KObject> {
    const { kind } = object;
    const { namespace, name } = object.metadata;
    const r = this.resources(kind)[0]!;
    const what = `Writing ${kind} "${namespace}/${name}"`;
    const body = r.toKube(object);
    const known = this.known.get(keyOf(object));
    try {
      let stored: KubeJson | undefined;
      if (pre.mustNotExist) stored = await this.create(r, namespace, body);
      else if (
        r.statusSubresource &&
        pre.resourceVersion !== undefined &&
        known?.metadata.resourceVersion === pre.resourceVersion &&
        sameButStatus(known, object)
      ) {
        // Only status changed: the object itself is left alone (the subresource write checks the version).
        stored = undefined;
      } else {
        const meta = {
          ...(body.metadata as object),
          ...(pre.resourceVersion ? { resourceVersion: pre.resourceVersion } : {}),
        };
        try {
          stored = await this.client.request('PUT', r.itemPath(namespace, name), {
            body: { ...body, metadata: meta },
          });
        } catch (err) {
          // No precondition: create or replace. A Secret read from a kylix.dev Secret is written natively.
          if (isStatus(err, 404) && (pre.resourceVersion === undefined || kind === 'Secret'))
            stored = await this.create(r, namespace, body);
          else throw err;
        }
      }
      if (
        r.statusSubresource &&
        object.status !== undefined &&
        !isDeepStrictEqual(stored?.status, object.status)
      ) {
        const rv = (stored?.metadata?.resourceVersion as string | undefined) ?? pre.resourceVersion;
        stored = await this.client.request('PUT', `${r.itemPath(namespace, name)}/status`, {
          body: {
            ...(stored ?? body),
            metadata: { ...((stored ?? body).metadata as object), resourceVersion: rv },
            status: object.status,
          },
        });
      }
      const result = stored && r.toKylix(stored);
      if (!result) throw new KylixError('ERR_INTERNAL', `${what}: the API server answered with no object.`);
      // A new Event is also a core Event, for kubectl describe / get events (core-events.ts).
      if (kind === 'Event' && pre.mustNotExist)
        void this.client
          .request('POST', coreEventsPath(namespace), { body: coreEventOf(result) })
          .catch(() => undefined);
      return this.remember(result);
    } catch (err) {
      if (isStatus(err, 409))
        throw err.reason === 'AlreadyExists'
          ? new KylixError('ERR_ALREADY_EXISTS', `${kind} "${name}" already exists. Use apply to update it.`)
          : new KylixError(
              'ERR_CONFLICT',
              `${kind} "${name}" was changed by someone else (resourceVersion ${pre.resourceVersion} is stale). Get it again and reapply your change.`,
            );
      if (isStatus(err, 404)) throw notFound(kind, namespace, name);
      throw kubeFailure(err, what);
    }
  }

  async delete(kind: string, namespace: string, name: string, pre: Precondition = {}): Promise<KObject> {
    for (const r of this.resources(kind)) {
      let current: KObject | undefined;
      try {
        current = r.toKylix(await this.client.request('GET', r.itemPath(namespace, name)));
      } catch (err) {
        if (isStatus(err, 404)) continue;
        throw kubeFailure(err, `Reading ${kind} "${namespace}/${name}"`);
      }
      if (!current) continue;
      const rv = pre.resourceVersion ?? current.metadata.resourceVersion;
      try {
        // Background: the object goes now, what it owns (a Function's Revisions) after it.
        await this.client.request('DELETE', r.itemPath(namespace, name), {
          body: {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            propagationPolicy: 'Background',
            preconditions: { resourceVersion: rv, uid: current.metadata.uid },
          },
        });
      } catch (err) {
        if (isStatus(err, 409))
          throw new KylixError(
            'ERR_CONFLICT',
            `${kind} "${name}" was changed by someone else (resourceVersion ${rv} is stale). Get it again and delete it then.`,
          );
        if (isStatus(err, 404)) continue;
        throw kubeFailure(err, `Deleting ${kind} "${namespace}/${name}"`);
      }
      this.known.delete(keyOf(current));
      return current;
    }
    throw notFound(kind, namespace, name);
  }

  watch(
    sinceVersion: string | undefined,
    listener: (event: WatchEvent) => void,
    _onEnd?: (err: unknown) => void,
  ): Watch {
    // The streams never end while the store is open (they resume and relist themselves).
    const entry = { since: this.history.replay(sinceVersion, this.newest, listener), deliver: listener };
    this.listeners.add(entry);
    return { close: () => this.listeners.delete(entry) };
  }

  /** Lists every kind again, handing watchers what their watches have not brought yet. */
  async sync(): Promise<void> {
    try {
      await Promise.all(this.streams.map((s) => s.relist()));
    } catch (err) {
      throw kubeFailure(err, 'Catching up with the cluster');
    }
  }

  /** A Lease-based election of one holder among the installation's nodes (see lease.ts). */
  leaderElection(name: string, timings?: Partial<LeaseTimings>): LeaseElection {
    const election = new LeaseElection(this.client, name, timings, this.options.namespace);
    this.elections.add(election);
    return election;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.close();
    this.listeners.clear();
    await Promise.all([...this.elections].map((e) => e.close()));
    this.client.close();
  }

  private resources(kind: string): KubeResource[] {
    let list = this.byKind.get(kind);
    if (!list) {
      list = [internalResource(kind)];
      this.byKind.set(kind, list);
    }
    return list;
  }

  /** Creates an object, creating its namespace first when the cluster has none of that name. */
  private async create(r: KubeResource, namespace: string, body: KubeJson): Promise<KubeJson> {
    const post = () => this.client.request('POST', r.listPath(namespace), { body });
    try {
      return await post();
    } catch (err) {
      if (!(isStatus(err, 404) && /namespaces? .*not found/i.test(err.message))) throw err;
      await this.client.ensureNamespace(namespace);
      return post();
    }
  }

  private deliver(e: WatchEvent): void {
    const rv = rvOf(e.object);
    if (rv > this.newest) this.newest = rv;
    if (e.type === 'DELETED') this.known.delete(keyOf(e.object));
    this.history.remember(rv, e);
    for (const l of this.listeners) if (rv > l.since) l.deliver(structuredClone(e));
  }

  private remember(o: KObject): KObject {
    const key = keyOf(o);
    const previous = this.known.get(key);
    if (!previous || rvOf(o) >= rvOf(previous)) this.known.set(key, o);
    return structuredClone(o);
  }
}

const keyOf = (o: KObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

/** Whether two versions of an object differ in status alone. */
function sameButStatus(a: KObject, b: KObject): boolean {
  const { status: _a, metadata: ma, ...ra } = a;
  const { status: _b, metadata: mb, ...rb } = b;
  return (
    isDeepStrictEqual(ra, rb) &&
    isDeepStrictEqual(ma.labels, mb.labels) &&
    isDeepStrictEqual(ma.annotations, mb.annotations) &&
    isDeepStrictEqual(ma.ownerReferences, mb.ownerReferences) &&
    isDeepStrictEqual(ma.finalizers, mb.finalizers)
  );
}
