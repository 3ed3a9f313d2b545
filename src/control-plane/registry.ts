/**
 * Object semantics on top of the store, as the Kubernetes API server has them: validation and
 * defaults, uid/generation/creationTimestamp, optimistic concurrency, status kept apart from spec,
 * and secret values sealed before they are stored and never returned.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { KylixError, quoteInput } from '../errors.js';
import { findKind, type KindInfo } from '../resources/kinds.js';
import { API_VERSION, type KObject } from '../resources/meta.js';
import { validateObject } from '../resources/validate.js';
import { RouteIndex } from './route-index.js';
import type { SecretBox } from './secrets.js';
import type { Store, Watch } from './store/interface.js';

/** A check run before a write is accepted (route conflicts, for one). */
export type Admission = (object: KObject, registry: Registry) => Promise<void>;

/** Options of a write. */
export interface WriteOptions {
  /** Create when missing (apply); otherwise the object must exist (replace). */
  upsert?: boolean;
}

/** Parses a label selector ("app=shop,tier!=web,env") into a predicate. */
export function labelSelector(
  selector: string | undefined,
): (labels: Record<string, string> | undefined) => boolean {
  if (!selector) return () => true;
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(t);
      if (m) return { key: m[1]!, op: m[2] === '!=' ? 'ne' : 'eq', value: m[3]! };
      if (t.startsWith('!')) return { key: t.slice(1), op: 'absent', value: '' };
      return { key: t, op: 'exists', value: '' };
    });
  return (labels = {}) =>
    terms.every((t) => {
      const v = labels[t.key];
      if (t.op === 'eq') return v === t.value;
      if (t.op === 'ne') return v !== t.value;
      if (t.op === 'absent') return v === undefined;
      return v !== undefined;
    });
}

/** See the file comment. */
export class Registry {
  private readonly admissions: Admission[] = [];
  /** User writes under way (a Secret write seals its values before it reaches the store). */
  private readonly writes = new Set<Promise<unknown>>();
  /** Every Function's routes, for admission (see route-index.ts); fed by writes and the store's watch. */
  private readonly routeIndex = new RouteIndex();
  private routeWatch?: Watch;
  /** Function writes, one at a time from admission to store, so none is admitted against a stale index. */
  private functionWrites: Promise<unknown> = Promise.resolve();

  constructor(
    readonly store: Store,
    /** The keyring that seals Secret values (key rotation works on it; see secret-rotation.ts). */
    readonly secrets: SecretBox,
  ) {}

  /**
   * Builds the route index and keeps it current: 1. note the store's version, 2. watch from it (on a
   * fleet this carries other nodes' writes), 3. list the Functions. A write between 1 and 3 is then
   * seen twice, which the index ignores by resourceVersion, never missed.
   */
  async indexRoutes(): Promise<void> {
    this.routeWatch?.close();
    this.routeIndex.clear();
    const from = await this.store.currentVersion();
    this.routeWatch = this.store.watch(from, (e) => this.routeIndex.update(e.object, e.type === 'DELETED'));
    for (const o of await this.store.list('Function')) this.routeIndex.update(o);
  }

  /** Stops following the store (the index stays as it is). */
  close(): void {
    this.routeWatch?.close();
    this.routeWatch = undefined;
  }

  /**
   * The route index, with every write committed so far in it: on a fleet the store first hands over
   * other nodes' writes not yet delivered (one small query), as a full list would have read them.
   * Before indexRoutes() ran, it is built from a list on first use.
   */
  async routes(): Promise<RouteIndex> {
    if (!this.routeWatch) await this.indexRoutes();
    await this.store.sync?.();
    return this.routeIndex;
  }

  /** Adds a check that every user write must pass. */
  addAdmission(check: Admission): void {
    this.admissions.push(check);
  }

  /** The kind for a URL plural, or ERR_NOT_FOUND. */
  kindFor(plural: string): KindInfo {
    const info = findKind(plural);
    if (!info)
      throw new KylixError(
        'ERR_NOT_FOUND',
        `There is no resource type ${quoteInput(plural)}. Try: functions, databases, keyvalues, queues, buckets, secrets, revisions, events.`,
      );
    return info;
  }

  async get(kind: string, namespace: string, name: string): Promise<KObject> {
    const o = await this.store.get(kind, namespace, name);
    if (!o) throw new KylixError('ERR_NOT_FOUND', `${kind} "${name}" not found in namespace "${namespace}".`);
    return o;
  }

  async list(kind: string, namespace: string | undefined, selector?: string): Promise<KObject[]> {
    const match = labelSelector(selector);
    return (await this.store.list(kind, namespace)).filter((o) => match(o.metadata.labels));
  }

  /**
   * Validates a user's object and writes it: create (must not exist), replace (must exist; a given
   * resourceVersion must be current) or apply (upsert). The generation moves only when spec changes.
   */
  async write(
    namespace: string,
    body: unknown,
    mode: 'create' | 'replace' | 'apply',
    where?: string,
    /** Validate and admit only, storing nothing (as Kubernetes' dryRun=All). */
    dryRun = false,
  ): Promise<{ object: KObject; changed: boolean; created: boolean }> {
    // Tracked whatever the kind: the body's kind is only trusted after validation.
    const isFunction = (body as { kind?: unknown } | null)?.kind === 'Function';
    const done = isFunction
      ? this.functionWrites.then(() => this.writeObject(namespace, body, mode, where, dryRun))
      : this.writeObject(namespace, body, mode, where, dryRun);
    if (isFunction) this.functionWrites = done.catch(() => {});
    this.writes.add(done);
    return done.finally(() => this.writes.delete(done));
  }

  /**
   * Resolves once every write that had begun has landed or failed. Key rotation waits for this
   * after switching keys, so no value sealed under the old key reaches the store unseen.
   */
  async writesSettled(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }

  private async writeObject(
    namespace: string,
    body: unknown,
    mode: 'create' | 'replace' | 'apply',
    where?: string,
    dryRun = false,
  ): Promise<{ object: KObject; changed: boolean; created: boolean }> {
    const valid = validateObject(body, where);
    if (valid.metadata.namespace && valid.metadata.namespace !== namespace) {
      throw new KylixError(
        'ERR_MANIFEST_INVALID',
        `metadata.namespace "${valid.metadata.namespace}" does not match the namespace "${namespace}" of the request.`,
        [{ field: 'metadata.namespace', message: `must be "${namespace}" or left out` }],
      );
    }
    const { kind } = valid;
    const name = valid.metadata.name;
    const existing = await this.store.get(kind, namespace, name);
    if (mode === 'create' && existing)
      throw new KylixError(
        'ERR_ALREADY_EXISTS',
        `${kind} "${name}" already exists in namespace "${namespace}". Use kylix apply to update it.`,
      );
    if (mode === 'replace' && !existing)
      throw new KylixError('ERR_NOT_FOUND', `${kind} "${name}" not found in namespace "${namespace}".`);

    const spec = kind === 'Secret' ? this.sealSecretSpec(valid.spec, existing) : valid.spec;
    const specChanged = !existing || !isDeepStrictEqual(existing.spec, spec);
    const next: KObject = {
      apiVersion: API_VERSION,
      kind,
      metadata: {
        name,
        namespace,
        ...(valid.metadata.labels ? { labels: valid.metadata.labels } : {}),
        ...(valid.metadata.annotations ? { annotations: valid.metadata.annotations } : {}),
        uid: existing?.metadata.uid ?? randomUUID(),
        resourceVersion: '',
        generation: existing ? existing.metadata.generation + (specChanged ? 1 : 0) : 1,
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date().toISOString(),
      },
      spec,
      ...(existing?.status ? { status: existing.status } : {}),
    };
    if (
      existing &&
      !specChanged &&
      isDeepStrictEqual(existing.metadata.labels, next.metadata.labels) &&
      isDeepStrictEqual(existing.metadata.annotations, next.metadata.annotations)
    ) {
      if (
        valid.metadata.resourceVersion &&
        valid.metadata.resourceVersion !== existing.metadata.resourceVersion
      ) {
        throw new KylixError(
          'ERR_CONFLICT',
          `${kind} "${name}" was changed by someone else (resourceVersion ${valid.metadata.resourceVersion} is stale). Get it again and reapply your change.`,
        );
      }
      return { object: existing, changed: false, created: false };
    }
    for (const check of this.admissions) await check(next, this);
    if (dryRun) return { object: next, changed: true, created: !existing };
    const stored = await this.store.put(
      next,
      existing
        ? { resourceVersion: valid.metadata.resourceVersion ?? existing.metadata.resourceVersion }
        : { mustNotExist: true },
    );
    this.routeIndex.update(stored);
    return { object: stored, changed: true, created: !existing };
  }

  /** Replaces an object's status (controllers only); spec and metadata stay as they are. */
  async writeStatus(
    kind: string,
    namespace: string,
    name: string,
    update: (current: KObject) => KObject['status'],
  ): Promise<KObject | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.store.get(kind, namespace, name);
      if (!current) return undefined;
      const status = update(current);
      if (isDeepStrictEqual(status, current.status)) return current;
      try {
        return await this.store.put(
          { ...current, status },
          { resourceVersion: current.metadata.resourceVersion },
        );
      } catch (err) {
        if (!(err instanceof KylixError && err.code === 'ERR_CONFLICT')) throw err;
      }
    }
    throw new KylixError(
      'ERR_CONFLICT',
      `Could not update the status of ${kind} "${name}": it kept changing.`,
    );
  }

  /** Writes a server-owned object (Revision, Event) without user validation. */
  async writeInternal(object: KObject): Promise<KObject> {
    const existing = await this.store.get(object.kind, object.metadata.namespace, object.metadata.name);
    return this.store.put(
      {
        ...object,
        metadata: { ...object.metadata, uid: existing?.metadata.uid ?? object.metadata.uid ?? randomUUID() },
      },
      existing ? { resourceVersion: existing.metadata.resourceVersion } : { mustNotExist: true },
    );
  }

  /**
   * Replaces an object's metadata.finalizers (stores with Store.finalizers), at the version it was
   * read at: a conflict throws, and the caller's work queue tries again with the newer object.
   */
  async setFinalizers(o: KObject, finalizers: string[]): Promise<KObject> {
    const { finalizers: _, ...metadata } = o.metadata;
    // Without status: the object's status is not this write's to change (a stale one would win).
    const { status: _status, ...object } = o;
    return this.store.put(
      { ...object, metadata: finalizers.length ? { ...metadata, finalizers } : metadata },
      { resourceVersion: o.metadata.resourceVersion },
    );
  }

  /** Marks an object so that deleting it also destroys its data (see controllers/resources.ts). */
  async markForPurge(kind: string, namespace: string, name: string): Promise<void> {
    const o = await this.get(kind, namespace, name);
    const annotations = { ...o.metadata.annotations, 'kylix.dev/purge-on-delete': 'true' };
    await this.store.put(
      { ...o, metadata: { ...o.metadata, annotations } },
      { resourceVersion: o.metadata.resourceVersion },
    );
  }

  async delete(kind: string, namespace: string, name: string, resourceVersion?: string): Promise<KObject> {
    const gone = await this.store.delete(kind, namespace, name, resourceVersion ? { resourceVersion } : {});
    this.routeIndex.update(gone, true);
    return gone;
  }

  /** The plaintext values of a Secret, for bindings. Never for API output. */
  async secretValues(namespace: string, name: string): Promise<Record<string, string>> {
    const o = await this.get('Secret', namespace, name);
    const sealed = ((o.spec ?? {}) as { sealed?: Record<string, string> }).sealed ?? {};
    return Object.fromEntries(Object.entries(sealed).map(([k, v]) => [k, this.secrets.open(v)]));
  }

  /** What the API shows of an object: a Secret's values are replaced by its key names. */
  present(o: KObject): KObject {
    if (o.kind !== 'Secret') return o;
    const sealed = ((o.spec ?? {}) as { sealed?: Record<string, string> }).sealed ?? {};
    return { ...o, spec: {}, status: { ...(o.status ?? {}), keys: Object.keys(sealed).sort() } };
  }

  /**
   * Seals a Secret's values. A value equal to what is already stored under the current key keeps
   * its old ciphertext, so re-applying an unchanged Secret changes nothing; one sealed under an
   * older key is sealed again (a re-write re-seals, as in Kubernetes).
   */
  private sealSecretSpec(
    spec: Record<string, unknown>,
    existing: KObject | undefined,
  ): Record<string, unknown> {
    const given = spec as { stringData?: Record<string, string>; data?: Record<string, string> };
    const values: Record<string, string> = { ...given.stringData };
    for (const [k, v] of Object.entries(given.data ?? {}))
      values[k] = Buffer.from(v, 'base64').toString('utf8');
    const old = ((existing?.spec ?? {}) as { sealed?: Record<string, string> }).sealed ?? {};
    const sealed: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      const previous = old[k];
      let same = false;
      if (previous && this.secrets.isCurrent(previous)) {
        try {
          same = this.secrets.open(previous) === v;
        } catch {
          same = false;
        }
      }
      sealed[k] = same && previous ? previous : this.secrets.seal(v);
    }
    return { sealed };
  }
}
