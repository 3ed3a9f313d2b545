/**
 * What each namespace holds in one embedded store that keeps its data in the node's memory (the
 * KeyValue and Queue providers), against a quota per namespace: one tenant's data must not be able
 * to take the memory every tenant's functions and the platform itself run in.
 */
import { KylixError } from '../errors.js';

const MIB = 2 ** 20;

/** The quota from environment variable `name` (MiB), else `fallbackMib`. */
export function quotaFromEnv(name: string, fallbackMib: number): number {
  const mib = Number(process.env[name]);
  return (Number.isFinite(mib) && mib > 0 ? mib : fallbackMib) * MIB;
}

/** See the file comment. */
export class NamespaceBytes {
  private readonly held = new Map<string, number>();

  constructor(
    /** Bytes one namespace may hold. */
    readonly limit: number,
    /** What holds them, and the variable that sets the limit, for the error: "KeyValue namespaces", "KYLIX_KV_NAMESPACE_MIB". */
    private readonly what: string,
    private readonly variable: string,
  ) {}

  /** Bytes `namespace` holds now. */
  of(namespace: string): number {
    return this.held.get(namespace) ?? 0;
  }

  /** Counts `delta` bytes more (or fewer) for `namespace`. */
  add(namespace: string, delta: number): void {
    const left = this.of(namespace) + delta;
    if (left > 0) this.held.set(namespace, left);
    else this.held.delete(namespace);
  }

  /**
   * Refuses (ERR_QUOTA_EXCEEDED, 507) a write that would take `namespace` past the limit by
   * `grows` bytes; `advice` says how to make room. A write that shrinks what it holds always passes.
   */
  check(namespace: string, grows: number, advice: string): void {
    const held = this.of(namespace);
    if (grows <= 0 || held + grows <= this.limit) return;
    throw new KylixError(
      'ERR_QUOTA_EXCEEDED',
      `The ${this.what} of ${namespace} hold ${Math.round(held / MIB)} MiB, and this write would take them past their ${Math.round(this.limit / MIB)} MiB on this node (${this.variable}). ${advice}`,
    );
  }
}
