/**
 * The control plane's state store. The embedded store (a journal in the data folder) implements it
 * today; a PostgreSQL store will implement the same interface for the fleet.
 */
import type { KObject } from '../../resources/meta.js';

/** A change to one object, as watch streams deliver it. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KObject;
}

/** What must hold for a write to go through (optimistic concurrency). */
export interface Precondition {
  /** The object must not exist yet (create). */
  mustNotExist?: boolean;
  /** The object must exist with exactly this resourceVersion. */
  resourceVersion?: string;
}

/** A running watch; close() ends it. */
export interface Watch {
  close(): void;
}

/**
 * One holder at a time among the nodes of an installation, for work that must run on one node only
 * (cron ticks). A store whose backend offers leases (Kubernetes) provides it.
 */
export interface LeaderElection {
  /** Whether this node holds the leadership now. */
  isLeader(): boolean;
  /** Stops competing and gives the leadership up, so another node takes over at once. */
  /** An election among the nodes sharing this store, by name (see LeaderElection). */
  leaderElection?(name: string): LeaderElection;
  close(): Promise<void>;
}

/** Where resources, revisions and status live. Every method is async so a networked store fits. */
export interface Store {
  readonly name: string;
  /**
   * Whether a delete of an object with metadata.finalizers only marks it (deletionTimestamp) until
   * they are removed, as Kubernetes does (the kubernetes store); other stores delete at once.
   */
  readonly finalizers?: boolean;
  /** The newest resourceVersion the store has handed out (for list metadata). */
  currentVersion(): Promise<string>;
  get(kind: string, namespace: string, name: string): Promise<KObject | undefined>;
  /** Objects of a kind, in one namespace or (namespace undefined) all, sorted by namespace and name. */
  list(kind: string, namespace?: string): Promise<KObject[]>;
  /** Creates or replaces an object, stamping a new metadata.resourceVersion; resolves once durable. */
  put(object: KObject, precondition?: Precondition): Promise<KObject>;
  /** Deletes an object; resolves with it once the deletion is durable. */
  delete(kind: string, namespace: string, name: string, precondition?: Precondition): Promise<KObject>;
  /**
   * Calls `listener` for every change after `sinceVersion` (all kinds), then for each new one.
   * Throws ERR_GONE when `sinceVersion` is older than the store still remembers.
   */
  watch(sinceVersion: string | undefined, listener: (event: WatchEvent) => void): Watch;
  /**
   * Drops superseded versions of objects from disk, where the store keeps them (a journal), so that
   * secret values re-sealed under a new key leave no old ciphertext behind.
   */
  compact?(): Promise<void>;
  /**
   * Resolves once every change committed before the call has reached this node's watchers. Only a
   * store that others write to (PostgreSQL) needs it; in the embedded store a write reaches the
   * watchers before it resolves.
   */
  sync?(): Promise<void>;
  /** An election among the nodes sharing this store, by name (see LeaderElection). */
  leaderElection?(name: string): LeaderElection;
  close(): Promise<void>;
}
