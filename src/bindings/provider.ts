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

/** How long a backend may take to answer its health check before it counts as unhealthy. */
export const HEALTH_TIMEOUT_MS = 5_000;

/**
 * `provider`'s health, asked now: a provider that cannot be opened, throws, or does not answer
 * within `ms` (a frozen server keeps its connections open and says nothing) is not healthy.
 */
export async function healthOf(
  provider: Provider | Promise<Provider>,
  ms = HEALTH_TIMEOUT_MS,
): Promise<Health> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Health>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({ ok: false, message: `the backend did not answer its health check within ${ms / 1000} s` }),
      ms,
    );
  });
  try {
    return await Promise.race([Promise.resolve(provider).then((p) => p.health()), late]);
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
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
