/**
 * A Function's Revision objects in the store: listing them oldest first, creating the next one
 * (when nodes of a fleet race to create the same one, all of them use the one that was stored), and
 * deleting those beyond the history limit, or all of them when the Function is gone.
 */
import { KylixError } from '../../errors.js';
import type { FunctionSpec } from '../../resources/kinds.js';
import type { KObject } from '../../resources/meta.js';
import { type RevisionKey, revisionKey } from '../../resources/serving.js';
import { codeDigestOf } from '../bundles.js';
import { recordEvent } from '../events.js';
import type { Registry } from '../registry.js';
import { FUNCTION_LABEL, revisionObject, revSpec } from './revisions.js';

/** See the file comment. */
export class RevisionHistory {
  constructor(private readonly registry: Registry) {}

  /** The revisions of function `name`, oldest first. */
  async list(namespace: string, name: string): Promise<KObject[]> {
    const list = await this.registry.list('Revision', namespace, `${FUNCTION_LABEL}=${name}`);
    return list.sort((a, b) => revSpec(a).number - revSpec(b).number);
  }

  /** Stores revision `number` of `fn`, the template of `spec` (whose hash is `hash`), and records an Event. */
  async create(fn: KObject, spec: FunctionSpec, hash: string, number: number): Promise<KObject> {
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

  /** Deletes revisions beyond the history limit, never one that takes traffic or the newest. */
  async collectGarbage(
    namespace: string,
    name: string,
    revisions: KObject[],
    keep: number,
    serving: Set<RevisionKey>,
  ): Promise<void> {
    const old = revisions.slice(0, Math.max(0, revisions.length - 1 - keep));
    for (const r of old) {
      if (serving.has(revisionKey(namespace, name, revSpec(r).number))) continue;
      await this.delete(namespace, r);
    }
  }

  /** Deletes every one of `revisions` (those of a Function that is gone). */
  async deleteAll(namespace: string, revisions: KObject[]): Promise<void> {
    for (const r of revisions) await this.delete(namespace, r);
  }

  /** Deletes one revision, ignoring a failure. */
  private async delete(namespace: string, r: KObject): Promise<void> {
    await this.registry.delete('Revision', namespace, r.metadata.name).catch(() => undefined);
  }
}
