/**
 * A node-wide budget that namespaces share: the bytes the node's bucket gets may be reading at
 * once, what the binding calls in flight may hold. The node's total bounds the supervisor's memory;
 * a namespace's share of it (half) keeps one tenant from holding all of it, so another tenant's
 * calls are never refused because of someone else's.
 */

/** The part of a budget one namespace may hold. */
const NAMESPACE_SHARE = 0.5;

/** See the file comment. */
export class NamespaceBudget {
  private used = 0;
  private readonly byNamespace = new Map<string, number>();

  constructor(
    /** The node's total. */
    readonly total: number,
  ) {}

  /** What the whole node holds now. */
  get held(): number {
    return this.used;
  }

  /** What `namespace` holds now. */
  heldBy(namespace: string): number {
    return this.byNamespace.get(namespace) ?? 0;
  }

  /** Whether `namespace` may take `amount` more: within the node's total and within its share. */
  fits(namespace: string, amount: number): boolean {
    return (
      this.used + amount <= this.total && this.heldBy(namespace) + amount <= this.total * NAMESPACE_SHARE
    );
  }

  /** Takes `amount` for `namespace` (checked with fits() first); give() it back once. */
  take(namespace: string, amount: number): void {
    this.used += amount;
    this.byNamespace.set(namespace, this.heldBy(namespace) + amount);
  }

  give(namespace: string, amount: number): void {
    this.used -= amount;
    const left = this.heldBy(namespace) - amount;
    if (left > 0) this.byNamespace.set(namespace, left);
    else this.byNamespace.delete(namespace);
  }
}
