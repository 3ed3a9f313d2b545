/**
 * Key rotation for Secret values at rest. Re-seal: every value sealed under an older key of the
 * ring is sealed again under the current one, with the store's optimistic concurrency. Rotation
 * of the embedded key file: a new key first, re-seal, then drop the keys no value uses. A value's
 * plaintext never changes, so functions that bind it keep running (see FunctionController).
 */
import { KylixError } from '../errors.js';
import type { ResealResult, RotationResult, UnreadableValue } from '../resources/api-types.js';
import type { KObject } from '../resources/meta.js';
import type { Registry } from './registry.js';
import { sealedKeyId } from './secrets.js';

const CONFLICT_RETRIES = 10;

const sealedOf = (o: KObject) => ((o.spec ?? {}) as { sealed?: Record<string, string> }).sealed ?? {};

/** Re-seals and rotates; one operation at a time per node. */
export class SecretRotation {
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly registry: Registry) {}

  /** Seals every Secret value in every namespace under the current key. */
  reseal(): Promise<ResealResult> {
    return this.exclusive(() => this.resealAll());
  }

  /**
   * Rotates the key file: 1. a new key goes first in the file and the ring, 2. writes that sealed
   * under the old key land, 3. every value is re-sealed under the new key, 4. keys no value uses
   * leave the file. Refused (with how to do it) when the keys come from the installation config.
   */
  rotateKey(): Promise<RotationResult> {
    return this.exclusive(async () => {
      const box = this.registry.secrets;
      const { previousKeyId } = await box.addCurrentKey();
      await this.registry.writesSettled();
      const result = await this.resealAll();
      const removedKeyIds = await box.dropKeysExcept(new Set(result.keyIdsInUse));
      return { ...result, previousKeyId, removedKeyIds, keyIds: box.keyIds };
    });
  }

  private async resealAll(): Promise<ResealResult> {
    const { store, secrets: box } = this.registry;
    const listed = await store.list('Secret');
    const unreadable: UnreadableValue[] = [];
    let resealed = 0;
    for (const first of listed) {
      const { namespace, name } = first.metadata;
      let current: KObject | undefined = first;
      for (let attempt = 0; current; attempt++) {
        const sealed = sealedOf(current);
        const next: Record<string, string> = {};
        const failed: UnreadableValue[] = [];
        let moved = 0;
        for (const [key, value] of Object.entries(sealed)) {
          next[key] = value;
          if (box.isCurrent(value)) continue;
          try {
            next[key] = box.seal(box.open(value));
            moved++;
          } catch (err) {
            const message = err instanceof KylixError ? err.message : String(err);
            failed.push({ namespace, secret: name, key, keyId: sealedKeyId(value) ?? '?', message });
          }
        }
        if (moved === 0) {
          unreadable.push(...failed);
          break;
        }
        try {
          // Only spec.sealed changes: same plaintext, same generation, so nothing restarts.
          await store.put(
            { ...current, spec: { ...current.spec, sealed: next } },
            { resourceVersion: current.metadata.resourceVersion },
          );
          resealed += moved;
          unreadable.push(...failed);
          break;
        } catch (err) {
          if (!(err instanceof KylixError && err.code === 'ERR_CONFLICT')) throw err;
          if (attempt + 1 >= CONFLICT_RETRIES)
            throw new KylixError(
              'ERR_CONFLICT',
              `Secret "${name}" in namespace "${namespace}" kept changing while it was re-sealed. Run the re-seal again.`,
            );
          current = await store.get('Secret', namespace, name);
        }
      }
    }
    // Old ciphertexts must not linger in the store's journal.
    if (resealed > 0) await store.compact?.();
    return {
      currentKeyId: box.keyId,
      secrets: listed.length,
      resealed,
      keyIdsInUse: await this.keyIdsInUse(),
      unreadable,
    };
  }

  /** The key ids named by the sealed values in the store now. */
  private async keyIdsInUse(): Promise<string[]> {
    const ids = new Set<string>();
    for (const o of await this.registry.store.list('Secret'))
      for (const v of Object.values(sealedOf(o))) ids.add(sealedKeyId(v) ?? '?');
    return [...ids].sort();
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.running.then(work, work);
    this.running = run.catch(() => undefined);
    return run;
  }
}
