/**
 * What every state store does the same way, whatever holds the data: the optimistic-concurrency
 * checks, the not-found error, the order of a list, and the history a watch resumes from.
 */
import { KylixError } from '../../errors.js';
import type { KObject } from '../../resources/meta.js';
import type { Precondition, WatchEvent } from './interface.js';

/** The optimistic-concurrency checks every store makes before a write. */
export function checkPrecondition(
  kind: string,
  name: string,
  existing: KObject | undefined,
  pre: Precondition,
): void {
  if (pre.mustNotExist && existing) {
    throw new KylixError('ERR_ALREADY_EXISTS', `${kind} "${name}" already exists. Use apply to update it.`);
  }
  if (pre.resourceVersion !== undefined) {
    if (!existing) throw new KylixError('ERR_NOT_FOUND', `${kind} "${name}" not found.`);
    if (existing.metadata.resourceVersion !== pre.resourceVersion) {
      throw new KylixError(
        'ERR_CONFLICT',
        `${kind} "${name}" was changed by someone else (resourceVersion ${pre.resourceVersion} is stale, now ${existing.metadata.resourceVersion}). Get it again and reapply your change.`,
      );
    }
  }
}

/** The error for deleting an object that is not there. */
export function notFound(kind: string, namespace: string, name: string): KylixError {
  return new KylixError('ERR_NOT_FOUND', `${kind} "${name}" not found in namespace "${namespace}".`);
}

/** The order of every list: by namespace, then name. */
export const byNamespaceAndName = (a: KObject, b: KObject): number =>
  a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name);

/** The newest changes a store remembers, so a watch can resume from a resourceVersion. */
export class WatchHistory {
  private readonly entries: { rv: number; event: WatchEvent }[] = [];

  constructor(private readonly size: number) {}

  remember(rv: number, event: WatchEvent): void {
    this.entries.push({ rv, event });
    if (this.entries.length > this.size) this.entries.splice(0, this.entries.length - this.size);
  }

  /**
   * Hands `listener` the remembered changes after `sinceVersion` (a client's resourceVersion; none,
   * '' or '0' means from now), given the newest version the store has delivered. Returns the
   * version the listener has now seen. Throws ERR_GONE when `sinceVersion` is older than the
   * history reaches back.
   */
  replay(sinceVersion: string | undefined, newest: number, listener: (event: WatchEvent) => void): number {
    if (sinceVersion === undefined || sinceVersion === '' || sinceVersion === '0') return newest;
    const since = Number(sinceVersion);
    const oldest = this.entries[0]?.rv;
    if (!Number.isFinite(since) || (since < newest && (oldest === undefined || since < oldest - 1))) {
      throw new KylixError(
        'ERR_GONE',
        `resourceVersion ${sinceVersion} is too old; list again and watch from the list's resourceVersion.`,
      );
    }
    for (const h of this.entries) if (h.rv > since) listener(h.event);
    return Math.max(since, newest);
  }

  /** Rewrites remembered events in place (compaction strips superseded secret values). */
  rewrite(change: (event: WatchEvent) => WatchEvent): void {
    for (const h of this.entries) h.event = change(h.event);
  }
}
