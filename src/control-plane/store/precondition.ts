/** The optimistic-concurrency rules every store applies before a write. */
import { KylixError } from '../../errors.js';
import type { KObject } from '../../resources/meta.js';
import type { Precondition } from './interface.js';

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
