/**
 * An informer, as kubernetes-client's: it keeps a local cache of one kind's objects and tells its
 * handlers what was added, updated and deleted, from the store's list and watch:
 * 1. take the store's current resourceVersion, then list the kind (a write in between is then in
 *    both, which the resourceVersion check below makes harmless, never in neither);
 * 2. replace the cache with the list, calling add/update/delete for what differs from before;
 * 3. watch from that resourceVersion (or, after a broken watch, from the last one seen); each
 *    event newer than the cached object updates the cache and calls a handler;
 * 4. on ERR_GONE (the store no longer remembers that far back) list again at once;
 * 5. on any other failure (a store that cannot be reached, a watch the store ended) try again
 *    after an exponential, jittered, capped backoff, on the injected clock.
 * Handlers run in event order and must not throw (a reconciler only queues the key). Objects in
 * the cache are the store's: read them, never change them.
 */
import { KylixError } from '../errors.js';
import type { KObject } from '../resources/meta.js';
import { type BackoffOptions, backoffDelay, type CancelTimer, type Clock, systemClock } from './clock.js';
import type { Watch, WatchEvent } from './store/interface.js';

/** What an informer needs of a store (the Store interface has it). */
export interface ListWatchSource {
  currentVersion(): Promise<string>;
  list(kind: string): Promise<KObject[]>;
  /**
   * Events after `sinceVersion`, then each new one; throws ERR_GONE when that is too old. A source
   * that can lose its stream (a networked one) calls `onEnd` when it does; the informer then
   * watches again from the last version it saw.
   */
  watch(sinceVersion: string, listener: (event: WatchEvent) => void, onEnd?: (err: unknown) => void): Watch;
}

/** What an informer tells a reconciler. */
export interface InformerHandlers {
  /** A new object; `initialList` when it came with the first list (what was there at start-up). */
  add?(object: KObject, initialList: boolean): void;
  update?(previous: KObject, object: KObject): void;
  /** The object's last state (the store's, when the deletion was watched). */
  delete?(object: KObject): void;
}

/** Options of an Informer. */
export interface InformerOptions {
  source: ListWatchSource;
  kind: string;
  handlers?: InformerHandlers;
  clock?: Clock;
  /** Delays between attempts after failures (default 500 ms doubling to 30 s, 20% jitter). */
  backoff?: BackoffOptions;
  /** Told of each failure, with the delay before the next attempt. */
  onError?: (err: unknown, retryInMs: number) => void;
}

/** The default delays between attempts to list and watch again. */
export const RELIST_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.2 };

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** Resource versions are the stores' counters; compared as numbers, as both stores hand them out. */
function newer(a: string, b: string): boolean {
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x > y : a !== b;
}

/** See the file comment. */
export class Informer {
  private readonly cache = new Map<string, KObject>();
  private readonly clock: Clock;
  private readonly backoff: BackoffOptions;
  private watch?: Watch;
  /** The newest resourceVersion this informer has seen: where a broken watch resumes. */
  private version?: string;
  private failures = 0;
  /** Whether the last failure was Gone: a second Gone in a row waits, so a churning store is not listed in a loop. */
  private gone = false;
  private retry?: CancelTimer;
  /** Bumped on every (re)start, so callbacks of an abandoned watch or list do nothing. */
  private epoch = 0;
  private synced = false;
  private stopped = false;
  private firstSync?: { resolve: () => void; promise: Promise<void> };

  constructor(private readonly options: InformerOptions) {
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? RELIST_BACKOFF;
  }

  /** Lists and starts watching; resolves once the first list is in the cache and handed to the handlers. */
  start(): Promise<void> {
    if (!this.firstSync) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.firstSync = { resolve, promise };
      void this.listAndWatch();
    }
    return this.firstSync.promise;
  }

  /** Stops watching and retrying; the cache stays readable. */
  stop(): void {
    this.stopped = true;
    this.epoch++;
    this.retry?.();
    this.watch?.close();
    this.watch = undefined;
  }

  /** Whether the first list has been handed to the handlers. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Whether the cache is current: synced, and its watch is open (not stopped, not between a failed
   * watch and the next attempt, when changes may be going unseen).
   */
  get watching(): boolean {
    return this.synced && !this.stopped && this.watch !== undefined;
  }

  /** The newest resourceVersion seen (of a list or an event). */
  get resourceVersion(): string | undefined {
    return this.version;
  }

  /** An object from the cache. */
  get(namespace: string, name: string): KObject | undefined {
    return this.cache.get(keyOf(namespace, name));
  }

  /** The cached objects, of one namespace or all, by namespace and name. */
  list(namespace?: string): KObject[] {
    const out = [...this.cache.values()].filter(
      (o) => namespace === undefined || o.metadata.namespace === namespace,
    );
    return out.sort(
      (a, b) =>
        a.metadata.namespace.localeCompare(b.metadata.namespace) ||
        a.metadata.name.localeCompare(b.metadata.name),
    );
  }

  /** Steps 1–3 of the file comment; a resumable watch skips the list. */
  private async listAndWatch(): Promise<void> {
    const epoch = ++this.epoch;
    this.watch?.close();
    this.watch = undefined;
    try {
      let from = this.version;
      if (from === undefined) {
        const version = await this.options.source.currentVersion();
        const items = await this.options.source.list(this.options.kind);
        if (epoch !== this.epoch) return;
        this.replace(items, version);
        from = version;
      }
      this.watch = this.options.source.watch(
        from,
        (e) => {
          if (epoch === this.epoch) this.apply(e);
        },
        (err) => {
          if (epoch === this.epoch) this.failed(err);
        },
      );
      this.failures = 0;
      this.gone = false;
    } catch (err) {
      if (epoch === this.epoch) this.failed(err);
    }
  }

  /** Steps 4 and 5: list again at once on Gone, else after the backoff. */
  private failed(err: unknown): void {
    if (this.stopped) return;
    this.epoch++;
    this.watch?.close();
    this.watch = undefined;
    this.failures++;
    const gone = err instanceof KylixError && err.code === 'ERR_GONE';
    // Gone: what we saw is too old to resume from, so list again (at once, unless that keeps failing).
    if (gone) this.version = undefined;
    const delay = gone && !this.gone ? 0 : backoffDelay(this.failures, this.backoff);
    this.gone = gone;
    this.options.onError?.(err, delay);
    this.retry?.();
    this.retry = this.clock.after(delay, () => {
      this.retry = undefined;
      if (!this.stopped) void this.listAndWatch();
    });
  }

  /** Step 2: the list becomes the cache; the handlers hear what changed since the last one. */
  private replace(items: KObject[], version: string): void {
    const initial = !this.synced;
    const seen = new Set<string>();
    for (const o of items) {
      const key = keyOf(o.metadata.namespace, o.metadata.name);
      seen.add(key);
      const previous = this.cache.get(key);
      this.cache.set(key, o);
      if (!previous) this.notify((h) => h.add?.(o, initial));
      else if (previous.metadata.resourceVersion !== o.metadata.resourceVersion)
        this.notify((h) => h.update?.(previous, o));
    }
    for (const [key, o] of this.cache) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.notify((h) => h.delete?.(o));
    }
    this.version = version;
    if (!this.synced) {
      this.synced = true;
      this.firstSync?.resolve();
    }
  }

  /** Step 3: one watched event. */
  private apply(e: WatchEvent): void {
    const rv = e.object.metadata.resourceVersion;
    if (this.version === undefined || newer(rv, this.version)) this.version = rv;
    if (e.object.kind !== this.options.kind) return;
    const key = keyOf(e.object.metadata.namespace, e.object.metadata.name);
    const previous = this.cache.get(key);
    // Replayed events the list already reflected are older than, or the same as, the cached object.
    if (previous && !newer(rv, previous.metadata.resourceVersion)) return;
    if (e.type === 'DELETED') {
      this.cache.delete(key);
      this.notify((h) => h.delete?.(e.object));
      return;
    }
    this.cache.set(key, e.object);
    if (previous) this.notify((h) => h.update?.(previous, e.object));
    else this.notify((h) => h.add?.(e.object, false));
  }

  /** Calls a handler; one that throws must not break the store's delivery to other watchers. */
  private notify(call: (h: InformerHandlers) => void): void {
    const handlers = this.options.handlers;
    if (!handlers) return;
    try {
      call(handlers);
    } catch (err) {
      console.error(`kylix: a ${this.options.kind} informer handler failed:`, err);
    }
  }
}
