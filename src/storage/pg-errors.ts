/**
 * Keeps a PostgreSQL connection that dies from crashing the node. pg emits 'error' on a client whose
 * connection the server ends (a restart, a failover, `pg_terminate_backend` — which a tenant's own
 * role may call on its own sessions), and an 'error' event nobody listens to ends the process. A
 * pool listens only while a client is idle; a client checked out (a transaction, a session being
 * reset) had no listener. Every client now has one from its start: the query in flight rejects with
 * the same error, and a client that errored is not given out again.
 */
import type { Client, Pool } from 'pg';

const ignore = () => {};

/** Makes every client of `pool`, idle or checked out, safe from a dying connection; returns the pool. */
export function guardPool<P extends Pool>(pool: P): P {
  pool.on('error', ignore);
  pool.on('connect', (client) => client.on('error', ignore));
  return pool;
}

/** The same for a lone client. */
export function guardClient<C extends Client>(client: C): C {
  client.on('error', ignore);
  return client;
}
