/**
 * A node-wide budget that namespaces share: the bytes the node's bucket gets may be reading at
 * once, what the binding calls in flight may hold. The node's total bounds the supervisor's memory;
 * a namespace's share of it (half) keeps one tenant from holding all of it, so another tenant's
 * calls are never refused because of someone else's. A namespace's part is an object its users
 * keep (a channel looks it up once), so taking and giving back is arithmetic, not map lookups.
 */

/** The part of a budget one namespace may hold. */
const NAMESPACE_SHARE = 0.5;

/** One namespace's part of a budget. */
export class BudgetShare {
  held = 0;

  constructor(private readonly budget: NamespaceBudget) {}

  /** Whether `amount` more fits: within the node's total and within the namespace's share. */
  fits(amount: number): boolean {
    return (
      this.budget.held + amount <= this.budget.total &&
      this.held + amount <= this.budget.total * NAMESPACE_SHARE
    );
  }

  /** Takes `amount` (checked with fits() first); give() it back once. */
  take(amount: number): void {
    this.held += amount;
    this.budget.held += amount;
  }

  give(amount: number): void {
    this.held -= amount;
    this.budget.held -= amount;
  }
}

/** See the file comment. */
export class NamespaceBudget {
  /** What the whole node holds now. */
  held = 0;
  /** Each namespace's part, kept once made (there are as many as namespaces ever served). */
  private readonly shares = new Map<string, BudgetShare>();

  constructor(
    /** The node's total. */
    readonly total: number,
  ) {}

  /** The part of `namespace`. */
  of(namespace: string): BudgetShare {
    let share = this.shares.get(namespace);
    if (!share) {
      share = new BudgetShare(this);
      this.shares.set(namespace, share);
    }
    return share;
  }
}
