/**
 * The Function reconciler: turns each Function's desired state into running state, as a Kubernetes
 * controller does. On every change it 1. creates an immutable Revision when the code or template
 * changed, 2. starts it, 3. resolves spec.traffic to revisions and starts each of them,
 * 4. points the gateway at them, 5. drains and stops revisions that no longer take traffic, and
 * 6. writes status (Ready, traffic, observedGeneration) and Events. A revision that fails to start
 * leaves what served before serving. Functions and Secrets reach it through informers (a list, then
 * a watch, with their cache); each function is reconciled from the work queue, one at a time and
 * retried with backoff when a reconcile throws.
 *
 * This file holds that sequence and the wiring; its parts live beside it: revision-history.ts
 * (Revision objects: list, create, garbage-collect), revision-lifecycle.ts (starting, falling back,
 * draining and retiring revisions on this node), function-traffic.ts (spec.traffic to the gateway's
 * split), function-status.ts (the Ready conditions written) and function-bindings.ts (what a
 * function binds, and whether it exists yet).
 */
import { scopedKey } from '../../bindings/identity.js';
import { KylixError } from '../../errors.js';
import { BINDING_RESOURCE_KIND_LIST } from '../../resources/binding-kinds.js';
import { functionSpec } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import { type RevisionKey, revisionKey } from '../../resources/serving.js';
import { issuesToCauses } from '../../resources/validate.js';
import { AssetTables } from '../assets.js';
import type { BundleStore } from '../bundles.js';
import type { Clock } from '../clock.js';
import { recordEvent } from '../events.js';
import { Informer } from '../informer.js';
import type { Registry } from '../registry.js';
import type { FunctionRoutes, FunctionTriggers, RevisionRunner } from '../serving.js';
import { type ControllerObserver, WorkQueue } from '../work-queue.js';
import { bindsResource, bindsSecret, missingBindings } from './function-bindings.js';
import { servingStatus, setFunctionStatus, setRevisionReady } from './function-status.js';
import { proxyLimits, resolveTraffic, trafficOf } from './function-traffic.js';
import { RevisionHistory } from './revision-history.js';
import { RevisionLifecycle } from './revision-lifecycle.js';
import { RevisionSecrets } from './revision-secrets.js';
import { revSpec, templateHash } from './revisions.js';

/** "namespace/name" → [namespace, name]. */
const splitKey = (key: string): [string, string] => [
  key.slice(0, key.indexOf('/')),
  key.slice(key.indexOf('/') + 1),
];

/** See the file comment. */
export class FunctionController {
  private readonly work: WorkQueue;
  /** Functions (the cache reconciles read) and Secrets (whose changes restart functions binding them). */
  private readonly functions: Informer;
  private readonly secretObjects: Informer;
  /** Secrets that changed, each checked once at a time against the functions binding it. */
  private readonly secretWork: WorkQueue;
  /** Revision keys each function currently routes to. */
  private readonly serving = new Map<string, Set<RevisionKey>>();
  /** The generation of each function this node last reconciled. */
  private readonly reconciled = new Map<string, number>();
  /** What each running revision's secret bindings held when it started. */
  private readonly secrets: RevisionSecrets;
  /** The resources functions bind: one appearing starts the functions that waited for it. */
  private readonly bound: Informer[];
  /** Each revision's static assets, loaded from the bundle store. */
  private readonly assets: AssetTables;
  /** Each function's Revision objects in the store. */
  private readonly history: RevisionHistory;
  /** Starts and retires revisions on this node. */
  private readonly lifecycle: RevisionLifecycle;

  constructor(
    private readonly registry: Registry,
    runtime: RevisionRunner,
    private readonly gateway: FunctionRoutes,
    private readonly bundles: BundleStore,
    private readonly triggers?: FunctionTriggers,
    clock?: Clock,
    observe?: ControllerObserver,
  ) {
    this.secrets = new RevisionSecrets(registry);
    this.assets = new AssetTables(bundles);
    this.history = new RevisionHistory(registry);
    this.lifecycle = new RevisionLifecycle(registry, runtime, bundles, this.secrets, this.assets);
    this.work = new WorkQueue({
      work: (key) => this.reconcile(...splitKey(key)),
      observe: observe && ((s, failed) => observe('function', s, failed)),
      onError: (key, err) => console.error(`kylix: reconciling function ${key} failed (retrying):`, err),
      clock,
    });
    this.secretWork = new WorkQueue({
      work: (key) => this.secretChanged(...splitKey(key)),
      observe: observe && ((s, failed) => observe('secret', s, failed)),
      onError: (key, err) =>
        console.error(`kylix: restarting the functions bound to Secret ${key} failed (retrying):`, err),
      clock,
    });
    const onError = (kind: string) => (err: unknown, retryInMs: number) =>
      console.error(`kylix: watching ${kind}s failed; trying again in ${retryInMs} ms:`, err);
    const enqueue = (o: KObject) => this.enqueue(o.metadata.namespace, o.metadata.name);
    this.functions = new Informer({
      source: registry.store,
      kind: 'Function',
      clock,
      onError: onError('Function'),
      handlers: {
        add: enqueue,
        update: (_previous, fn) => {
          const { namespace, name, generation } = fn.metadata;
          // Status writes (this node's, or another node's on a fleet) come back as updates: only a
          // new generation needs a reconcile, or nodes would answer each other's writes forever.
          if (this.reconciled.get(scopedKey(namespace, name)) !== generation) enqueue(fn);
        },
        delete: enqueue,
      },
    });
    this.bound = BINDING_RESOURCE_KIND_LIST.map(
      (kind) =>
        new Informer({
          source: registry.store,
          kind,
          clock,
          onError: onError(kind),
          handlers: {
            add: (o, initialList) => {
              if (!initialList) this.resourceAppeared(o);
            },
          },
        }),
    );
    const secretChanged = (o: KObject) =>
      this.secretWork.add(scopedKey(o.metadata.namespace, o.metadata.name));
    this.secretObjects = new Informer({
      source: registry.store,
      kind: 'Secret',
      clock,
      onError: onError('Secret'),
      handlers: {
        // Functions starting up read their Secrets anyway: only later changes restart anything.
        add: (o, initialList) => {
          if (!initialList) secretChanged(o);
        },
        update: (_previous, o) => secretChanged(o),
      },
    });
  }

  /** Reconciles every Function, then follows changes. */
  async start(): Promise<void> {
    await Promise.all([
      this.secretObjects.start(),
      ...this.bound.map((i) => i.start()),
      this.functions.start(),
    ]);
    await this.settled();
  }

  stop(): void {
    this.functions.stop();
    this.secretObjects.stop();
    for (const i of this.bound) i.stop();
    this.work.stop();
    this.secretWork.stop();
  }

  /** Resolves when no reconcile is queued or running (for start-up and tests). */
  settled(): Promise<void> {
    return this.work.settled();
  }

  /** Reconciles one function; reconciles of the same function never overlap, and failed ones are retried. */
  enqueue(namespace: string, name: string): void {
    this.work.add(scopedKey(namespace, name));
  }

  private async reconcile(namespace: string, name: string): Promise<void> {
    const key = scopedKey(namespace, name);
    const fn = this.functions.get(namespace, name);
    if (!fn) {
      this.reconciled.delete(key);
      return this.teardown(namespace, name);
    }
    this.reconciled.set(key, fn.metadata.generation);
    // Objects applied straight to a cluster passed only its CRD schema, which cannot state every rule.
    const parsed = functionSpec.safeParse(fn.spec);
    if (!parsed.success) {
      const causes = issuesToCauses(parsed.error.issues, 'spec');
      await setFunctionStatus(this.registry, fn, {
        status: 'False',
        reason: 'Invalid',
        message: `The spec is not valid: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}. Fix it and apply again.`,
      });
      return;
    }
    const spec = parsed.data;

    // Code the Function gives inline or by reference is fetched here, before a revision names it.
    let digest: string | undefined;
    try {
      digest = await this.bundles.ensure(spec);
    } catch (err) {
      if (!(err instanceof KylixError)) throw err;
      await setFunctionStatus(this.registry, fn, {
        status: 'False',
        reason: 'NoBundle',
        message: err.message,
      });
      return;
    }
    if (!digest) {
      await setFunctionStatus(this.registry, fn, {
        status: 'False',
        reason: 'NoBundle',
        message: `No code for this function: apply it with \`kylix apply -f\`, which bundles spec.source, or give spec.code or spec.bundle.`,
      });
      return;
    }

    // 1. The newest revision, made anew when the template changed.
    const revisions = await this.history.list(namespace, name);
    const hash = templateHash(spec);
    let latest = revisions.at(-1);
    if (!latest || revSpec(latest).templateHash !== hash) {
      latest = await this.history.create(fn, spec, hash, (latest ? revSpec(latest).number : 0) + 1);
      revisions.push(latest);
    }

    // 2. Start it, once every resource it binds exists. If it cannot start, the newest revision
    //    that did start keeps the function serving (after a restart too), and status says what failed.
    const missing = await missingBindings(this.registry, namespace, spec);
    if (missing) await setRevisionReady(this.registry, latest, 'False', 'BindingMissing', missing);
    const failure = missing ?? (await this.lifecycle.ensureStarted(fn, latest));
    let ready: KObject | undefined = latest;
    if (failure) {
      ready = await this.lifecycle.fallback(fn, revisions.slice(0, -1));
      const failed = `Revision ${revSpec(latest).number} failed to start: ${failure}`;
      if (!ready) {
        // Its routes say why it cannot answer, rather than that nothing is there (404).
        this.gateway.setFunction(
          key,
          spec.routes,
          { name, shares: [], tags: {}, limits: proxyLimits(spec.limits), failure: failed },
          fn.metadata.creationTimestamp,
        );
        await setFunctionStatus(
          this.registry,
          fn,
          { status: 'False', reason: 'RevisionFailed', message: failed },
          { latestCreatedRevision: revSpec(latest).number },
        );
        return;
      }
    }
    const latestReady = revSpec(ready).number;

    // 3. Traffic: which revisions serve, with what share; each must exist and start.
    const traffic = trafficOf(spec);
    const split = await resolveTraffic(fn, traffic, revisions, latestReady, (r) =>
      this.lifecycle.ensureStarted(fn, r),
    );
    if ('problem' in split) {
      await setFunctionStatus(
        this.registry,
        fn,
        { status: 'False', ...split.problem },
        { latestCreatedRevision: revSpec(latest).number },
      );
      return;
    }
    const { shares, tags } = split;

    // 4. Route: the routes of the newest ready revision, to the revisions in the split.
    const rev = revSpec(ready);
    const previous = this.serving.get(key) ?? new Set<RevisionKey>();
    this.gateway.setFunction(
      key,
      rev.routes,
      { name, shares, tags, limits: proxyLimits(rev.limits), assets: await this.assets.load(rev.assets) },
      // Of two namespaces' overlapping routes (admissions racing on a fleet), every node serves the older function's.
      fn.metadata.creationTimestamp,
    );
    const newest = revisionKey(namespace, name, rev.number);
    const now = new Set([...shares, ...Object.values(tags)].map((s) => s.revisionKey));
    now.add(newest);
    this.serving.set(key, now);
    // Queue batches and scheduled ticks go to the newest ready revision.
    this.triggers?.serving(namespace, name, rev, newest);

    // 5. Drain and stop what no longer takes traffic (the newest revision stays started while it is warm).
    for (const old of previous)
      if (!now.has(old)) void this.lifecycle.drainAndRetire(old, (k) => this.isServing(k));

    await this.history.collectGarbage(namespace, name, revisions, spec.revisionHistoryLimit, now);

    // 6. Status.
    const { condition, extra } = servingStatus(rev, traffic, revSpec(latest).number, latestReady, failure);
    await setFunctionStatus(this.registry, fn, condition, extra);
  }

  /** Whether any function routes to revision `key` now. */
  private isServing(key: RevisionKey): boolean {
    for (const keys of this.serving.values()) if (keys.has(key)) return true;
    return false;
  }

  /**
   * Functions binding a Secret start again with its new values: each running revision whose bound
   * values differ from those it started with is stopped, then the function is reconciled (which
   * also starts a revision that was waiting for the Secret). A Secret written with the same values
   * (re-sealed under a new key, labels changed) restarts nothing.
   */
  async secretChanged(namespace: string, secret: string): Promise<void> {
    for (const fn of this.functions.list(namespace)) {
      if (!bindsSecret(fn, secret)) continue;
      for (const k of this.serving.get(scopedKey(namespace, fn.metadata.name)) ?? []) {
        const number = k.slice(k.lastIndexOf('/') + 1);
        const revision = await this.registry.store.get(
          'Revision',
          namespace,
          `${fn.metadata.name}-${number}`,
        );
        let changed = true;
        try {
          if (revision) changed = await this.secrets.changed(k, namespace, revSpec(revision));
        } catch (err) {
          if (!(err instanceof KylixError && err.code === 'ERR_SECRET_UNREADABLE')) throw err;
          // Stopping it would not help: it could not start again on this node.
          await recordEvent(
            this.registry,
            fn,
            'Warning',
            'SecretUnreadable',
            `Secret "${secret}" changed, but this node cannot open it, so revision ${number} keeps the values it started with: ${err.message}`,
          );
          continue;
        }
        if (!changed) continue;
        // Requests in the moment between stop and start get 503 with Retry-After.
        await this.lifecycle.retire(k);
      }
      this.enqueue(namespace, fn.metadata.name);
    }
  }

  /** A bound kind's resource was created: functions binding it that are not ready try again. */
  private resourceAppeared(o: KObject): void {
    for (const fn of this.functions.list(o.metadata.namespace))
      if (bindsResource(fn, o)) this.enqueue(o.metadata.namespace, fn.metadata.name);
  }

  /** The Function is gone: stop serving it, stop its instances, delete its revisions and events. */
  private async teardown(namespace: string, name: string): Promise<void> {
    const key = scopedKey(namespace, name);
    this.gateway.removeFunction(key);
    this.triggers?.removed(namespace, name);
    const serving = this.serving.get(key) ?? new Set<RevisionKey>();
    this.serving.delete(key);
    const revisions = await this.history.list(namespace, name);
    for (const r of revisions) serving.add(revisionKey(namespace, name, revSpec(r).number));
    for (const k of serving) await this.lifecycle.retire(k);
    await this.history.deleteAll(namespace, revisions);
    for (const e of await this.registry.list(
      'Event',
      namespace,
      `kylix.dev/kind=Function,kylix.dev/name=${name}`,
    )) {
      await this.registry.delete('Event', namespace, e.metadata.name).catch(() => undefined);
    }
  }
}
