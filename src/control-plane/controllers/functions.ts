/**
 * The Function reconciler: turns each Function's desired state into running state, as a Kubernetes
 * controller does. On every change it 1. creates an immutable Revision when the code or template
 * changed, 2. starts it, 3. resolves spec.traffic to revisions and starts each of them,
 * 4. points the gateway at them, 5. drains and stops revisions that no longer take traffic, and
 * 6. writes status (Ready, traffic, observedGeneration) and Events. A revision that fails to start
 * leaves what served before serving. Functions and Secrets reach it through informers (a list, then
 * a watch, with their cache); each function is reconciled from the work queue, one at a time and
 * retried with backoff when a reconcile throws.
 */
import { scopedKey } from '../../bindings/identity.js';
import { StackMapper } from '../../build/source-map.js';
import { KylixError } from '../../errors.js';
import { BINDING_RESOURCE_KIND_LIST, BINDING_RESOURCE_KINDS } from '../../resources/binding-kinds.js';
import { type FunctionSpec, functionSpec } from '../../resources/kinds.js';
import { type KObject, setCondition } from '../../resources/meta.js';
import { type RevisionKey, revisionKey } from '../../resources/serving.js';
import { issuesToCauses } from '../../resources/validate.js';
import { AssetTables } from '../assets.js';
import { type BundleStore, codeDigestOf } from '../bundles.js';
import type { Clock } from '../clock.js';
import { recordEvent } from '../events.js';
import { Informer } from '../informer.js';
import type { Registry } from '../registry.js';
import type {
  FunctionRoutes,
  FunctionTriggers,
  RevisionRunner,
  RevisionTarget,
  TrafficShare,
} from '../serving.js';
import { type ControllerObserver, WorkQueue } from '../work-queue.js';
import { RevisionSecrets } from './revision-secrets.js';
import { FUNCTION_LABEL, type RevisionSpec, revisionObject, revSpec, templateHash } from './revisions.js';

/** "namespace/name" → [namespace, name]. */
const splitKey = (key: string): [string, string] => [
  key.slice(0, key.indexOf('/')),
  key.slice(key.indexOf('/') + 1),
];

/**
 * A start-up failure in one line: its message, and where in the user's code it was thrown (the
 * first frame left after mapping), as "Error: boom (at src/index.ts:3:9)".
 */
function summarizeFailure(message: string): string {
  const lines = message.split('\n');
  const frame = lines.find((l) => /^\s+at\s/.test(l));
  const where = frame ? /\(?([^\s()]+:\d+:\d+)\)?\s*$/.exec(frame)?.[1] : undefined;
  const head = lines
    .filter((l) => !/^\s+at\s/.test(l))
    .join(' ')
    .trim();
  return where ? `${head} (at ${where})` : head;
}

/** How long a replaced revision may finish its in-flight requests. */
const DRAIN_MS = 30_000;

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
  /** Maps a start-up failure's stack to the user's source. */
  private readonly stacks = new StackMapper();

  constructor(
    private readonly registry: Registry,
    private readonly runtime: RevisionRunner,
    private readonly gateway: FunctionRoutes,
    private readonly bundles: BundleStore,
    private readonly triggers?: FunctionTriggers,
    clock?: Clock,
    observe?: ControllerObserver,
  ) {
    this.secrets = new RevisionSecrets(registry);
    this.assets = new AssetTables(bundles);
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
      await this.setStatus(fn, {
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
      await this.setStatus(fn, { status: 'False', reason: 'NoBundle', message: err.message });
      return;
    }
    if (!digest) {
      await this.setStatus(fn, {
        status: 'False',
        reason: 'NoBundle',
        message: `No code for this function: apply it with \`kylix apply -f\`, which bundles spec.source, or give spec.code or spec.bundle.`,
      });
      return;
    }

    // 1. The newest revision, made anew when the template changed.
    const revisions = await this.revisions(namespace, name);
    const hash = templateHash(spec);
    let latest = revisions.at(-1);
    if (!latest || revSpec(latest).templateHash !== hash) {
      latest = await this.createRevision(fn, spec, hash, (latest ? revSpec(latest).number : 0) + 1);
      revisions.push(latest);
    }

    // 2. Start it, once every resource it binds exists. If it cannot start, the newest revision
    //    that did start keeps the function serving (after a restart too), and status says what failed.
    const missing = await this.missingBindings(namespace, spec);
    if (missing) await this.setRevisionReady(latest, 'False', 'BindingMissing', missing);
    const failure = missing ?? (await this.ensureStarted(fn, latest));
    let ready: KObject | undefined = latest;
    if (failure) {
      ready = undefined;
      for (const r of revisions.slice(0, -1).reverse()) {
        const wasReady = r.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (wasReady && !(await this.ensureStarted(fn, r))) {
          ready = r;
          break;
        }
      }
      const failed = `Revision ${revSpec(latest).number} failed to start: ${failure}`;
      if (!ready) {
        // Its routes say why it cannot answer, rather than that nothing is there (404).
        this.gateway.setFunction(
          key,
          spec.routes,
          {
            name,
            shares: [],
            tags: {},
            limits: {
              timeoutMs: spec.limits.timeoutMs,
              maxRequestBytes: spec.limits.maxRequestBytes,
              maxConcurrency: spec.limits.maxConcurrency,
            },
            failure: failed,
          },
          fn.metadata.creationTimestamp,
        );
        await this.setStatus(
          fn,
          { status: 'False', reason: 'RevisionFailed', message: failed },
          { latestCreatedRevision: revSpec(latest).number },
        );
        return;
      }
    }
    const latestReady = revSpec(ready).number;

    // 3. Traffic: which revisions serve, with what share; each must exist and start.
    const traffic = spec.traffic ?? [{ latestRevision: true, percent: 100 }];
    const byNumber = new Map(revisions.map((r) => [revSpec(r).number, r]));
    const shares: TrafficShare[] = [];
    const tags: Record<string, TrafficShare> = {};
    for (const t of traffic) {
      const number = t.latestRevision ? latestReady : (t.revision ?? latestReady);
      const revision = byNumber.get(number);
      if (!revision) {
        await this.setStatus(
          fn,
          {
            status: 'False',
            reason: 'RevisionMissing',
            message: `spec.traffic names revision ${number}, which does not exist (kylix rollout history ${name} lists them).`,
          },
          { latestCreatedRevision: latestReady },
        );
        return;
      }
      const problem = await this.ensureStarted(fn, revision);
      if (problem) {
        await this.setStatus(
          fn,
          {
            status: 'False',
            reason: 'RevisionFailed',
            message: `Revision ${number}, named in spec.traffic, failed to start: ${problem}`,
          },
          { latestCreatedRevision: latestReady },
        );
        return;
      }
      const share: TrafficShare = {
        revision: number,
        revisionKey: this.targetFor(namespace, name, revSpec(revision)).key,
        percent: t.percent,
      };
      if (t.percent > 0) shares.push(share);
      if (t.tag) tags[t.tag] = share;
    }

    // 4. Route: the routes of the newest ready revision, to the revisions in the split.
    const rev = revSpec(ready);
    const previous = this.serving.get(key) ?? new Set<RevisionKey>();
    // Of two namespaces' overlapping routes (admissions racing on a fleet), every node serves the older function's.
    this.gateway.setFunction(
      key,
      rev.routes,
      {
        name,
        shares,
        tags,
        limits: {
          timeoutMs: rev.limits.timeoutMs,
          maxRequestBytes: rev.limits.maxRequestBytes,
          maxConcurrency: rev.limits.maxConcurrency,
        },
        assets: await this.assets.load(rev.assets),
      },
      // Of two namespaces' overlapping routes (admissions racing on a fleet), every node serves the older function's.
      fn.metadata.creationTimestamp,
    );
    const now = new Set([...shares, ...Object.values(tags)].map((s) => s.revisionKey));
    now.add(this.targetFor(namespace, name, rev).key);
    this.serving.set(key, now);
    // Queue batches and scheduled ticks go to the newest ready revision.
    this.triggers?.serving(namespace, name, rev, this.targetFor(namespace, name, rev).key);

    // 5. Drain and stop what no longer takes traffic (the newest revision stays started while it is warm).
    for (const old of previous) if (!now.has(old)) void this.drainAndRetire(old);

    await this.collectGarbage(namespace, name, revisions, spec.revisionHistoryLimit, now);

    // 6. Status.
    const routes = rev.routes.map((r) => `${r.methods ? r.methods.join(',') : '*'} ${r.host ?? ''}${r.path}`);
    const trafficStatus = traffic.map((t) => ({
      revision: t.latestRevision ? latestReady : t.revision,
      percent: t.percent,
      ...(t.tag ? { tag: t.tag } : {}),
      ...(t.latestRevision ? { latestRevision: true } : {}),
    }));
    const split = trafficStatus.map((t) => `${t.revision}=${t.percent}%`).join(' ');
    const condition = failure
      ? {
          status: 'False' as const,
          reason: 'RevisionFailed',
          message: `Revision ${revSpec(latest).number} failed to start: ${failure} Revision ${latestReady} keeps serving (traffic: ${split}).`,
        }
      : {
          status: 'True' as const,
          reason: 'RevisionReady',
          message: `Revision ${latestReady} is ready; traffic: ${split}.`,
        };
    await this.setStatus(fn, condition, {
      latestCreatedRevision: revSpec(latest).number,
      latestReadyRevision: latestReady,
      routes,
      traffic: trafficStatus,
    });
  }

  private async createRevision(
    fn: KObject,
    spec: FunctionSpec,
    hash: string,
    number: number,
  ): Promise<KObject> {
    const { namespace, name } = fn.metadata;
    // On a fleet another node may be making the same revision at this moment: then use theirs.
    // A revision is never overwritten: if another node made this number with other code (a newer
    // generation), creating it fails and the reconcile runs again, seeing it, with the next number.
    const theirs = async () => {
      const made = await this.registry.store.get('Revision', namespace, `${name}-${number}`);
      return made && revSpec(made).templateHash === hash ? made : undefined;
    };
    const already = await theirs();
    if (already) return already;
    let revision: KObject;
    try {
      revision = await this.registry.store.put(revisionObject(fn, spec, hash, number), {
        mustNotExist: true,
      });
    } catch (err) {
      // Made by another node between our read and write: the same code is the same revision.
      const same =
        err instanceof KylixError && err.code === 'ERR_ALREADY_EXISTS' ? await theirs() : undefined;
      if (same) return same;
      throw err;
    }
    await recordEvent(
      this.registry,
      fn,
      'Normal',
      'RevisionCreated',
      `Created revision ${number} (${codeDigestOf(spec)?.slice(7, 19)})`,
    );
    return revision;
  }

  /** Deploys a revision unless it already runs; returns the reason when it cannot start. */
  private async ensureStarted(fn: KObject, revision: KObject): Promise<string | undefined> {
    const rev = revSpec(revision);
    const target = this.targetFor(fn.metadata.namespace, fn.metadata.name, rev);
    if (this.runtime.has(target.key)) return undefined;
    const started = performance.now();
    try {
      // Any revision may be started here (traffic split, fallback), so its code is fetched too.
      if (!(await this.bundles.ensure(rev)))
        throw new KylixError(
          'ERR_NOT_READY',
          `Revision ${rev.number} has no code. Apply the function again.`,
        );
      target.assets = await this.assets.load(rev.assets);
      const secrets = await this.secrets.env(fn.metadata.namespace, rev);
      target.env = { ...target.env, ...secrets };
      await this.runtime.deploy(target);
      this.secrets.remember(target.key, secrets);
    } catch (err) {
      const message = summarizeFailure(
        this.stacks.rewrite(target.bundlePath, err instanceof Error ? err.message : String(err)),
      );
      await this.setRevisionReady(revision, 'False', 'StartFailed', message);
      await recordEvent(
        this.registry,
        fn,
        'Warning',
        'RevisionFailed',
        `Revision ${rev.number} failed to start: ${message}`,
      );
      return message;
    }
    const ms = Math.round(performance.now() - started);
    await this.setRevisionReady(revision, 'True', 'Started', `Started in ${ms} ms`);
    await recordEvent(
      this.registry,
      fn,
      'Normal',
      'RevisionReady',
      `Revision ${rev.number} is ready (started in ${ms} ms)`,
    );
    return undefined;
  }

  private async setRevisionReady(
    revision: KObject,
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): Promise<void> {
    await this.registry.writeStatus('Revision', revision.metadata.namespace, revision.metadata.name, (r) => ({
      ...r.status,
      conditions: setCondition(r.status?.conditions, { type: 'Ready', status, reason, message }),
    }));
  }

  private targetFor(namespace: string, name: string, rev: RevisionSpec): RevisionTarget {
    return {
      key: revisionKey(namespace, name, rev.number),
      namespace,
      functionName: name,
      revision: rev.number,
      bundlePath: this.bundles.path(codeDigestOf(rev) ?? ''),
      env: { ...rev.env },
      memoryMiB: rev.limits.memoryMiB,
      // Carried to the sandbox with the target: it never reads them back from the store.
      limits: { cpuMs: rev.limits.cpuMs, egressAllow: [...rev.egress.allow] },
      scaling: rev.scaling,
      bindings: rev.bindings,
    };
  }

  /**
   * Functions binding a Secret start again with its new values: each running revision whose bound
   * values differ from those it started with is stopped, then the function is reconciled (which
   * also starts a revision that was waiting for the Secret). A Secret written with the same values
   * (re-sealed under a new key, labels changed) restarts nothing.
   */
  async secretChanged(namespace: string, secret: string): Promise<void> {
    for (const fn of this.functions.list(namespace)) {
      const bindings = (fn.spec as FunctionSpec).bindings ?? {};
      if (!Object.values(bindings).some((b) => 'secret' in b && b.secret === secret)) continue;
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
        this.secrets.forget(k);
        await this.runtime.retire(k);
      }
      this.enqueue(namespace, fn.metadata.name);
    }
  }

  /**
   * Why a spec cannot start yet: a binding names a Database, KeyValue, Queue or Bucket that does not
   * exist in the function's namespace. Undefined when all exist.
   */
  private async missingBindings(namespace: string, spec: FunctionSpec): Promise<string | undefined> {
    const problems: string[] = [];
    for (const [env, b] of Object.entries(spec.bindings ?? {})) {
      for (const [key, kind] of Object.entries(BINDING_RESOURCE_KINDS)) {
        const ref = (b as Record<string, unknown>)[key];
        if (typeof ref !== 'string') continue;
        if (!(await this.registry.store.get(kind, namespace, ref)))
          problems.push(
            `binding ${env} names ${kind} "${ref}", which does not exist in namespace "${namespace}"`,
          );
      }
    }
    if (problems.length === 0) return undefined;
    return `${problems.join('; ')}. Apply ${problems.length === 1 ? 'it' : 'them'} (kylix apply -f), or fix spec.bindings.`;
  }

  /** A bound kind's resource was created: functions binding it that are not ready try again. */
  private resourceAppeared(o: KObject): void {
    const key = Object.entries(BINDING_RESOURCE_KINDS).find(([, kind]) => kind === o.kind)?.[0];
    if (!key) return;
    for (const fn of this.functions.list(o.metadata.namespace)) {
      const bindings = (fn.spec as FunctionSpec).bindings ?? {};
      if (Object.values(bindings).some((b) => (b as Record<string, unknown>)[key] === o.metadata.name))
        this.enqueue(o.metadata.namespace, fn.metadata.name);
    }
  }

  private async setStatus(
    fn: KObject,
    ready: { status: 'True' | 'False'; reason: string; message: string },
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await this.registry.writeStatus('Function', fn.metadata.namespace, fn.metadata.name, (current) => {
      // Only act on the generation we looked at; a newer one is queued already.
      if (current.metadata.generation !== fn.metadata.generation) return current.status;
      return {
        ...current.status,
        ...extra,
        observedGeneration: fn.metadata.generation,
        // The code of that generation, whichever way it was given (source, code or bundle): one
        // field the BUNDLE column reads, in kylix get and as a CRD printer column alike.
        ...withBundle(codeDigestOf(fn.spec as FunctionSpec)),
        conditions: setCondition(current.status?.conditions, { type: 'Ready', ...ready }),
      };
    });
  }

  private async drainAndRetire(key: RevisionKey): Promise<void> {
    const deadline = Date.now() + DRAIN_MS;
    while (this.runtime.inFlight(key) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    // It may have been put back into service while it drained.
    for (const keys of this.serving.values()) if (keys.has(key)) return;
    this.secrets.forget(key);
    await this.runtime.retire(key);
  }

  private async revisions(namespace: string, name: string): Promise<KObject[]> {
    const list = await this.registry.list('Revision', namespace, `${FUNCTION_LABEL}=${name}`);
    return list.sort((a, b) => revSpec(a).number - revSpec(b).number);
  }

  /** Deletes revisions beyond the history limit, never one that takes traffic or the newest. */
  private async collectGarbage(
    namespace: string,
    name: string,
    revisions: KObject[],
    keep: number,
    serving: Set<RevisionKey>,
  ): Promise<void> {
    const old = revisions.slice(0, Math.max(0, revisions.length - 1 - keep));
    for (const r of old) {
      if (serving.has(revisionKey(namespace, name, revSpec(r).number))) continue;
      await this.registry.delete('Revision', namespace, r.metadata.name).catch(() => undefined);
    }
  }

  /** The Function is gone: stop serving it, stop its instances, delete its revisions and events. */
  private async teardown(namespace: string, name: string): Promise<void> {
    const key = scopedKey(namespace, name);
    this.gateway.removeFunction(key);
    this.triggers?.removed(namespace, name);
    const serving = this.serving.get(key) ?? new Set<RevisionKey>();
    this.serving.delete(key);
    const revisions = await this.revisions(namespace, name);
    for (const r of revisions) serving.add(revisionKey(namespace, name, revSpec(r).number));
    for (const k of serving) {
      this.secrets.forget(k);
      await this.runtime.retire(k);
    }
    for (const r of revisions)
      await this.registry.delete('Revision', namespace, r.metadata.name).catch(() => undefined);
    for (const e of await this.registry.list(
      'Event',
      namespace,
      `kylix.dev/kind=Function,kylix.dev/name=${name}`,
    )) {
      await this.registry.delete('Event', namespace, e.metadata.name).catch(() => undefined);
    }
  }
}

/** `{ bundle }` when there is a digest, else nothing (no key holding undefined in a status). */
function withBundle(digest: string | undefined): { bundle?: string } {
  return digest === undefined ? {} : { bundle: digest };
}
