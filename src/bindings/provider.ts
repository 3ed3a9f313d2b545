/**
 * What every binding provider shares. A provider serves one resource kind from one backend
 * (embedded, redis, nats, postgres, s3); it is chosen by name from the installation config and
 * its driver is imported lazily, so an unused backend costs nothing.
 */

/** The resource a call is for: a Database, KeyValue, Queue or Bucket object. */
export interface ResourceRef {
  namespace: string;
  name: string;
  /**
   * Set only on a space Kylix keeps for a namespace beside its resources (the Workers caches; see
   * internalSpace() in identity.ts): its backend names can never be a resource's.
   */
  internal?: true;
}

/** A backend's health, for `kylix describe` and `kylix doctor`. */
export interface Health {
  ok: boolean;
  message: string;
}

/** The lifecycle every provider has. */
export interface Provider {
  /** The backend's name: "embedded", "redis", "nats", "postgres", "s3", … */
  readonly name: string;
  /** Creates what the backend needs for the resource (idempotent; called on apply). */
  ensure(ref: ResourceRef): Promise<void>;
  /** Destroys the resource's data (delete --purge). */
  purge(ref: ResourceRef): Promise<void>;
  health(): Promise<Health>;
  close(): Promise<void>;
}
