/**
 * The secret bindings of running revisions. Values are read when a revision starts and passed to
 * it as env strings, never stored with the revision. To tell, when a Secret changes, which
 * revisions must restart, each running revision's values are remembered as a digest keyed by a
 * random per-process key (so the digests say nothing about the values); a Secret written with the
 * same values (re-sealed under a new key, labels changed) restarts nothing.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { KylixError } from '../../errors.js';
import type { Registry } from '../registry.js';
import type { RevisionSpec } from './revisions.js';

/** See the file comment. */
export class RevisionSecrets {
  private readonly digests = new Map<string, string>();
  private readonly key = randomBytes(32);

  constructor(private readonly registry: Registry) {}

  /**
   * The values of the revision's secret bindings, as env strings. They are read at start-up and
   * never stored with the revision; a changed Secret restarts the functions that bind it.
   */
  async env(namespace: string, rev: RevisionSpec): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const [name, b] of Object.entries(rev.bindings)) {
      if (!('secret' in b)) continue;
      let values: Record<string, string>;
      try {
        values = await this.registry.secretValues(namespace, b.secret);
      } catch (err) {
        // A value this node cannot open says so itself (which key is missing, what to do).
        if (!(err instanceof KylixError && err.code === 'ERR_NOT_FOUND')) throw err;
        throw new KylixError(
          'ERR_NOT_READY',
          `Secret "${b.secret}" (bound as ${name}) does not exist in namespace "${namespace}". Apply it, then the function starts.`,
        );
      }
      const keys = Object.keys(values);
      const key = b.key ?? (keys.length === 1 ? keys[0] : undefined);
      if (key === undefined || values[key] === undefined) {
        throw new KylixError(
          'ERR_NOT_READY',
          `Secret "${b.secret}" (bound as ${name}) ${b.key ? `has no key "${b.key}"` : `has ${keys.length} keys; say which with bindings.${name}.key`}.`,
        );
      }
      env[name] = values[key];
    }
    return env;
  }

  /** Notes the values a revision ("namespace/function/number") started with. */
  remember(revisionKey: string, env: Record<string, string>): void {
    this.digests.set(revisionKey, this.digestOf(env));
  }

  forget(revisionKey: string): void {
    this.digests.delete(revisionKey);
  }

  /**
   * Whether the revision's bound values now differ from those it started with (true when unknown,
   * or when a bound Secret is gone). Throws when the values cannot be read now (ERR_SECRET_UNREADABLE
   * when this node lacks their key), so nothing is restarted on a guess.
   */
  async changed(revisionKey: string, namespace: string, rev: RevisionSpec): Promise<boolean> {
    const started = this.digests.get(revisionKey);
    if (started === undefined) return true;
    try {
      return this.digestOf(await this.env(namespace, rev)) !== started;
    } catch (err) {
      // Gone or incomplete now: the revision must restart (and will wait for the Secret). Anything
      // else (a backend that is briefly down, a key this node lacks) changes nothing here.
      if (err instanceof KylixError && err.code === 'ERR_NOT_READY') return true;
      throw err;
    }
  }

  private digestOf(env: Record<string, string>): string {
    const entries = Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHmac('sha256', this.key).update(JSON.stringify(entries)).digest('hex');
  }
}
