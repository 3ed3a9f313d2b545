/**
 * One kind's list-then-watch against the API server, as a client-node informer does it, feeding
 * the store's single stream of changes:
 * 1. list (the cache becomes the list; what differs from before is handed on as events, a
 *    deletion stamped with the list's resourceVersion so it is newer than what it deletes);
 * 2. watch from the list's resourceVersion (with bookmarks, so a quiet kind's version moves);
 * 3. a watch the server ends (it does every few minutes) resumes from the last version seen;
 * 4. 410 Gone (that version is compacted away in etcd) lists again;
 * 5. any other failure waits an exponential, jittered backoff, then resumes.
 * Events the cache already reflects (a relist raced a watch) are dropped by resourceVersion.
 */
import type { WatchEvent } from '../control-plane/store/interface.js';
import type { KObject } from '../resources/meta.js';
import type { KubeClient, KubeJson } from './client.js';
import type { KubeResource } from './store-kinds.js';

/** How long the server keeps one watch open before the stream resumes it (seconds). */
const WATCH_SECONDS = 290;

/** Resource versions of one etcd are its revision counter: compared as numbers. */
export const rvOf = (o: { metadata: { resourceVersion: string } }) => Number(o.metadata.resourceVersion) || 0;

/** See the file comment. */
export class ResourceStream {
  private readonly cache = new Map<string, KObject>();
  private version = '';
  /** How many times the kind was listed (the first list, 410s, the store's syncs). */
  relists = 0;
  private abort?: AbortController;
  private failures = 0;
  private timer?: NodeJS.Timeout;
  private closed = false;
  /** Bumped on every (re)watch, so the callbacks of an abandoned watch do nothing. */
  private epoch = 0;

  constructor(
    private readonly client: KubeClient,
    readonly resource: KubeResource,
    private readonly emit: (event: WatchEvent) => void,
    private readonly onError: (err: unknown, retryInMs: number) => void,
  ) {}

  /** Lists (resolving once the cache holds the list), then watches. */
  async start(): Promise<void> {
    await this.relist();
    this.watch();
  }

  /** Step 1; also what the store's sync() does to catch up without waiting for the watch. */
  async relist(): Promise<string> {
    this.relists++;
    const list = await this.client.request<{ metadata: { resourceVersion: string }; items: KubeJson[] }>(
      'GET',
      this.resource.listPath(),
      { query: { ...this.resource.selectors } },
    );
    const listRv = list.metadata.resourceVersion;
    const seen = new Set<string>();
    for (const item of list.items) {
      const o = this.resource.toKylix(item);
      if (!o) continue;
      seen.add(keyOf(o));
      this.apply({ type: 'MODIFIED', object: o });
    }
    for (const [key, o] of this.cache) {
      // Newer than the list: created after it was read (a racing watch brought it), not deleted.
      if (seen.has(key) || rvOf(o) > Number(listRv)) continue;
      this.apply({
        type: 'DELETED',
        object: { ...o, metadata: { ...o.metadata, resourceVersion: listRv } },
      });
    }
    if (!this.version || Number(listRv) > Number(this.version)) this.version = listRv;
    return listRv;
  }

  /**
   * Watches again from `version`, as after a restart that remembered it; a version etcd no longer
   * has (410 Gone) makes the stream list again.
   */
  resumeFrom(version: string): void {
    this.epoch++;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.version = version;
    this.watch();
  }

  close(): void {
    this.closed = true;
    this.epoch++;
    clearTimeout(this.timer);
    this.abort?.abort();
  }

  /** Hands an event on unless the cache already reflects it. */
  private apply(e: WatchEvent): void {
    const key = keyOf(e.object);
    const cached = this.cache.get(key);
    if (e.type === 'DELETED') {
      if (!cached || rvOf(e.object) < rvOf(cached)) return;
      this.cache.delete(key);
    } else {
      if (cached && rvOf(e.object) <= rvOf(cached)) return;
      this.cache.set(key, e.object);
      if (!cached) e = { ...e, type: 'ADDED' };
    }
    this.emit(e);
  }

  /** Steps 2–5. */
  private watch(): void {
    if (this.closed) return;
    const epoch = ++this.epoch;
    let gone = false;
    void this.client
      .watch(
        this.resource.listPath(),
        {
          ...this.resource.selectors,
          resourceVersion: this.version,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_SECONDS,
        },
        (event) => {
          if (epoch !== this.epoch) return;
          const rv = event.object.metadata?.resourceVersion;
          if (event.type === 'ERROR') {
            gone = (event.object as { code?: number }).code === 410;
            return;
          }
          if (rv) this.version = rv;
          if (event.type === 'BOOKMARK') return;
          const o = this.resource.toKylix(event.object);
          if (o) this.apply({ type: event.type, object: o });
          this.failures = 0;
        },
        (err) => {
          if (epoch !== this.epoch || this.closed) return;
          if (gone || (err as { statusCode?: number } | null)?.statusCode === 410) return this.again(0, true);
          if (!err) return this.again(0, false);
          this.failures++;
          const delay = Math.min(30_000, 500 * 2 ** (this.failures - 1)) * (1 - Math.random() * 0.2);
          this.onError(err, Math.round(delay));
          this.again(delay, false);
        },
      )
      .then((abort) => {
        if (epoch === this.epoch) this.abort = abort;
        else abort.abort();
      });
  }

  private again(delay: number, relist: boolean): void {
    this.timer = setTimeout(() => {
      if (this.closed) return;
      const next = relist ? this.relist().then(() => this.watch()) : Promise.resolve(this.watch());
      next.catch((err) => {
        this.failures++;
        const wait = Math.min(30_000, 500 * 2 ** (this.failures - 1));
        this.onError(err, wait);
        this.again(wait, true);
      });
    }, delay);
    this.timer.unref();
  }
}

const keyOf = (o: KObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
