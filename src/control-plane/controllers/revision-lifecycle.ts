/**
 * Revisions on this node, for the Function controller: the runtime target a revision runs as,
 * starting it (its code, assets and secret values fetched first; a failure summarized at the line of
 * the user's source that threw, and written to the revision's Ready condition and an Event),
 * falling back to an older revision when the newest cannot start, and draining then retiring a
 * revision that no longer takes traffic.
 */
import { StackMapper } from '../../build/source-map.js';
import { KylixError } from '../../errors.js';
import type { KObject } from '../../resources/meta.js';
import { type RevisionKey, revisionKey } from '../../resources/serving.js';
import type { AssetTables } from '../assets.js';
import { type BundleStore, codeDigestOf } from '../bundles.js';
import { recordEvent } from '../events.js';
import type { Registry } from '../registry.js';
import type { RevisionRunner, RevisionTarget } from '../serving.js';
import { setRevisionReady } from './function-status.js';
import type { RevisionSecrets } from './revision-secrets.js';
import { type RevisionSpec, revSpec } from './revisions.js';

/** How long a replaced revision may finish its in-flight requests. */
const DRAIN_MS = 30_000;

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

/** See the file comment. */
export class RevisionLifecycle {
  /** Maps a start-up failure's stack to the user's source. */
  private readonly stacks = new StackMapper();

  constructor(
    private readonly registry: Registry,
    private readonly runtime: RevisionRunner,
    private readonly bundles: BundleStore,
    /** What each running revision's secret bindings held when it started. */
    private readonly secrets: RevisionSecrets,
    /** Each revision's static assets, loaded from the bundle store. */
    private readonly assets: AssetTables,
  ) {}

  /** What the runtime runs revision `rev` of function `name` as (its assets and secrets not yet loaded). */
  target(namespace: string, name: string, rev: RevisionSpec): RevisionTarget {
    return {
      key: revisionKey(namespace, name, rev.number),
      namespace,
      functionName: name,
      revision: rev.number,
      bundlePath: this.bundles.path(codeDigestOf(rev) ?? ''),
      env: { ...rev.env },
      ...(rev.vars ? { vars: rev.vars } : {}),
      memoryMiB: rev.limits.memoryMiB,
      // Carried to the sandbox with the target: it never reads them back from the store.
      limits: { cpuMs: rev.limits.cpuMs, egressAllow: [...rev.egress.allow] },
      scaling: rev.scaling,
      bindings: rev.bindings,
    };
  }

  /** Deploys a revision unless it already runs; returns the reason when it cannot start. */
  async ensureStarted(fn: KObject, revision: KObject): Promise<string | undefined> {
    const rev = revSpec(revision);
    const target = this.target(fn.metadata.namespace, fn.metadata.name, rev);
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
      await setRevisionReady(this.registry, revision, 'False', 'StartFailed', message);
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
    await setRevisionReady(this.registry, revision, 'True', 'Started', `Started in ${ms} ms`);
    await recordEvent(
      this.registry,
      fn,
      'Normal',
      'RevisionReady',
      `Revision ${rev.number} is ready (started in ${ms} ms)`,
    );
    return undefined;
  }

  /**
   * The newest of `older` (oldest first) that was Ready once and starts again: what keeps a function
   * serving, after a restart too, when its newest revision cannot start. Undefined when none does.
   */
  async fallback(fn: KObject, older: KObject[]): Promise<KObject | undefined> {
    for (const r of [...older].reverse()) {
      const wasReady = r.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (wasReady && !(await this.ensureStarted(fn, r))) return r;
    }
    return undefined;
  }

  /** Stops a revision on this node, and forgets the secret values it started with. */
  async retire(key: RevisionKey): Promise<void> {
    this.secrets.forget(key);
    await this.runtime.retire(key);
  }

  /** Lets a replaced revision finish its requests (for up to DRAIN_MS), then retires it. */
  async drainAndRetire(key: RevisionKey, isServing: (key: RevisionKey) => boolean): Promise<void> {
    const deadline = Date.now() + DRAIN_MS;
    while (this.runtime.inFlight(key) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    // It may have been put back into service while it drained.
    if (isServing(key)) return;
    await this.retire(key);
  }
}
