/**
 * The PostgreSQL Database provider: a DATABASE and a ROLE per resource (both resourceIdentity().sql,
 * created on ensure, dropped on purge). The role owns its database and nothing else, is a member of
 * nothing, and has no superuser, CREATEDB, CREATEROLE, replication or BYPASSRLS; nobody else may
 * connect to the database. Tenant SQL runs only on a pool connected AS that role (checked on every
 * new connection), so PostgreSQL's own privileges stop it reading files, running programs, reaching
 * other databases or seeing other tenants' sessions. The admin connection only creates and drops
 * roles and databases (postgres-roles.ts). After each call the session is reset (DISCARD ALL).
 * The `pg` driver is imported only when this provider is opened.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { KylixError } from '../../errors.js';
import { guardPool } from '../../storage/pg-errors.js';
import type { Health, ResourceRef } from '../provider.js';
import {
  identifierFor,
  notFound,
  orderMigrations,
  sqlError,
  TEXT_TYPES,
  toResult,
  transactionClosed,
} from './common.js';
import type { DatabaseProvider, SqlResult, Statement } from './interface.js';
import { TenantRoles } from './postgres-roles.js';
import { HangUp, HUNG_AFTER_MS, params, resetSession, run, txStatus } from './postgres-session.js';

/** Options of the postgres provider. */
export interface PostgresDatabaseOptions {
  /** postgres://user@host:port/db — the database Kylix connects to for CREATE/DROP DATABASE. */
  url: string;
  /** Connections per resource. */
  poolSize?: number;
  /** How long one statement may run before PostgreSQL cancels it (default 30 s). */
  statementTimeoutMs?: number;
}

interface Tx {
  client: PoolClient;
  timer: NodeJS.Timeout;
  chain: Promise<unknown>;
  /** Statements sent and not yet answered. */
  running: number;
}

type PgModule = typeof import('pg');

const BYTEA = 17;
/** See the admin pool in the constructor. */
const ADMIN_QUERY_TIMEOUT_MS = 60_000;

/** Connects (the driver is imported only now), checks the server answers, and returns the provider. */
export async function openPostgresDatabase(
  options: PostgresDatabaseOptions,
): Promise<PostgresDatabaseProvider> {
  const pg = ((await import('pg')) as unknown as { default: PgModule }).default;
  const provider = new PostgresDatabaseProvider(pg, options);
  const health = await provider.health();
  if (!health.ok) {
    await provider.close();
    throw new KylixError('ERR_BACKEND_UNAVAILABLE', health.message);
  }
  try {
    await provider.roles.prepare();
  } catch (err) {
    await provider.close();
    throw err;
  }
  return provider;
}

/** The PostgreSQL Database provider; see the file comment. */
export class PostgresDatabaseProvider implements DatabaseProvider {
  readonly name = 'postgres';
  private readonly admin: Pool;
  /** Creates, checks and drops the per-resource roles and databases (admin connection only). */
  readonly roles: TenantRoles;
  private readonly pools = new Map<string, Promise<Pool>>();
  private readonly txs = new Map<string, Tx>();
  private readonly timedOut = new Set<string>();

  constructor(
    private readonly pg: PgModule,
    private readonly options: PostgresDatabaseOptions,
  ) {
    // Its queries (role and database changes, cancels, health) fail past a minute: a server that
    // stopped answering must not hold them, and the pool closes the connection of one that failed.
    this.admin = this.newPool({ connectionString: options.url, query_timeout: ADMIN_QUERY_TIMEOUT_MS }, 2);
    this.roles = new TenantRoles(this.admin, options.url);
  }

  /** A pool whose results match the embedded provider's types (see TEXT_TYPES). */
  private newPool(config: import('pg').PoolConfig, max: number): Pool {
    const types = this.pg.types;
    const pool = new this.pg.Pool({
      ...config,
      max,
      idleTimeoutMillis: 30_000,
      // A server that does not answer (paused, unreachable) fails a new connection within 5 s.
      connectionTimeoutMillis: 5000,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === TEXT_TYPES.INT8 || oid === TEXT_TYPES.DATE) return (x: string) => x;
          const parse = types.getTypeParser(oid, format as 'text');
          if (oid !== BYTEA) return parse;
          // A plain Uint8Array, as PGlite returns, rather than a Node Buffer.
          return (x: string) => {
            const b = parse(x) as Buffer;
            return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
          };
        }) as typeof types.getTypeParser,
      },
    });
    // A client whose connection dies (a dropped database, a server restart, a tenant's
    // pg_terminate_backend of its own session) must not crash the node.
    guardPool(pool);
    return pool;
  }

  /** The resource's pool, connected as its own role; ERR_NOT_FOUND if it was never ensured. */
  private pool(ref: ResourceRef): Promise<Pool> {
    const db = identifierFor(ref);
    let pool = this.pools.get(db);
    if (!pool) {
      pool = this.roles.credentials(db).then((c) => {
        if (!c) throw notFound(ref);
        const timeout = this.options.statementTimeoutMs ?? 30_000;
        return this.newPool(
          {
            ...c,
            // The session default a tenant's RESET or DISCARD returns to.
            options: `-c statement_timeout=${timeout} -c idle_in_transaction_session_timeout=${Math.max(timeout, 60_000) + 5000}`,
            // Every new connection proves it is the tenant's role and nothing more before use.
            onConnect: (client: import('pg').ClientBase) => this.roles.verify(client, db),
          },
          this.options.poolSize ?? 5,
        );
      });
      pool.catch(() => this.pools.delete(db));
      this.pools.set(db, pool);
    }
    return pool;
  }

  /** Runs fn on one of the resource's connections, then resets its session for the next call. */
  private async withClient<T>(
    ref: ResourceRef,
    fn: (client: PoolClient) => Promise<T>,
    watch = true,
  ): Promise<T> {
    const client = await (await this.pool(ref)).connect();
    // statement_timeout is the session's, which a tenant may SET: past it, cancel from outside.
    const pid = (client as { processID?: number }).processID;
    const watchdog = watch ? setTimeout(() => pid && this.roles.cancel(pid), this.cancelAfterMs) : undefined;
    // Past the cancel too, the server is not answering: close the connection (postgres-session.ts).
    const hang = watch ? new HangUp(client, this.hungAfterMs) : undefined;
    try {
      return await (hang ? hang.watch(fn(client)) : fn(client));
    } finally {
      clearTimeout(watchdog);
      if (hang?.done()) client.release(true);
      else client.release(!(await resetSession(client)));
    }
  }

  /** A driver error that is not SQL's: the server, or the way to it. */
  private unavailable(err: unknown): KylixError {
    const where = new URL(this.options.url).host;
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `PostgreSQL at ${where} failed: ${(err as Error).message}. Check that it is running and reachable.`,
    );
  }

  /** When a call's statement is cancelled from outside (its session may have raised its own limit). */
  private get cancelAfterMs(): number {
    return (this.options.statementTimeoutMs ?? 30_000) + 2000;
  }

  /** When a connection that has not answered a statement, nor its cancel, is closed. */
  private get hungAfterMs(): number {
    return this.cancelAfterMs + HUNG_AFTER_MS;
  }

  /** Runs `query` on `client`, closing the connection if the server stops answering. */
  private async answered<T>(client: PoolClient, query: () => Promise<T>): Promise<T> {
    const hang = new HangUp(client, this.hungAfterMs);
    try {
      return await hang.watch(query());
    } finally {
      hang.done();
    }
  }

  /** Runs fn, turning driver errors into KylixErrors (an unknown database means the resource is missing). */
  private async guard<T>(ref: ResourceRef | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (ref && code === '3D000') throw notFound(ref);
      const e = sqlError(err);
      if (e instanceof KylixError) throw e;
      throw this.unavailable(err);
    }
  }

  async ensure(ref: ResourceRef): Promise<void> {
    await this.guard(undefined, () => this.roles.ensure(identifierFor(ref)));
  }

  async purge(ref: ResourceRef): Promise<void> {
    const db = identifierFor(ref);
    const pool = this.pools.get(db);
    this.pools.delete(db);
    await pool?.then((p) => p.end()).catch(() => {});
    await this.guard(undefined, () => this.roles.drop(db));
  }

  async health(): Promise<Health> {
    try {
      const r = await this.admin.query<{ v: string }>('SELECT version() AS v');
      return { ok: true, message: `${r.rows[0]?.v.split(',')[0]}, one database and role per resource.` };
    } catch (err) {
      const where = new URL(this.options.url);
      where.password = '';
      return { ok: false, message: `Cannot reach PostgreSQL at ${where.host}: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    for (const txId of [...this.txs.keys()]) await this.end(txId, 'ROLLBACK').catch(() => {});
    const pools = await Promise.all([...this.pools.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...pools, this.admin].map((p) => p?.end().catch(() => {})));
    this.pools.clear();
  }

  query(ref: ResourceRef, statement: Statement): Promise<SqlResult> {
    return this.guard(ref, () => this.withClient(ref, async (client) => run(client, statement)));
  }

  batch(ref: ResourceRef, statements: Statement[]): Promise<SqlResult[]> {
    return this.guard(ref, () =>
      this.withClient(ref, async (client) => {
        await client.query('BEGIN');
        const out: SqlResult[] = [];
        for (const s of statements) out.push(await run(client, s));
        // A tenant's own ROLLBACK or COMMIT inside the batch ended it early: the batch did not hold.
        if (txStatus(client) !== 'T')
          throw new KylixError('ERR_BAD_REQUEST', 'A batch may not end its own transaction; use begin().');
        await client.query('COMMIT');
        return out;
      }),
    );
  }

  async begin(ref: ResourceRef, timeoutMs: number): Promise<string> {
    const client = await this.guard(ref, async () => (await this.pool(ref)).connect());
    try {
      await client.query('BEGIN');
    } catch (err) {
      client.release(true);
      throw sqlError(err);
    }
    const txId = randomUUID();
    const timer = setTimeout(() => {
      this.timedOut.add(txId);
      if (this.timedOut.size > 1000) this.timedOut.delete(this.timedOut.values().next().value!);
      // A statement still running would hold the rollback back: cancel it first.
      const tx = this.txs.get(txId);
      const pid = (tx?.client as { processID?: number } | undefined)?.processID;
      if (tx?.running && pid) this.roles.cancel(pid);
      this.end(txId, 'ROLLBACK').catch(() => {});
    }, timeoutMs);
    this.txs.set(txId, { client, timer, chain: Promise.resolve(), running: 0 });
    return txId;
  }

  async queryInTransaction(txId: string, statement: Statement): Promise<SqlResult> {
    const tx = this.open(txId);
    tx.running++;
    const result = tx.chain
      .then(() => this.answered(tx.client, () => tx.client.query(statement.sql, params(statement))))
      .finally(() => {
        tx.running--;
      });
    tx.chain = result.catch(() => {});
    try {
      return toResult(await result);
    } catch (err) {
      // An error aborts a PostgreSQL transaction; end it now so it holds no connection.
      await this.end(txId, 'ROLLBACK').catch(() => {});
      throw this.wrap(err);
    }
  }

  async commit(txId: string): Promise<void> {
    this.open(txId);
    await this.end(txId, 'COMMIT');
  }

  async rollback(txId: string): Promise<void> {
    this.open(txId);
    await this.end(txId, 'ROLLBACK');
  }

  async migrate(ref: ResourceRef, migrations: { name: string; sql: string }[]): Promise<string[]> {
    const ordered = orderMigrations(migrations);
    return this.guard(ref, () =>
      this.withClient(
        ref,
        async (client) => {
          // Nodes that start together take turns; each applies only what the previous left undone.
          await client.query("SELECT pg_advisory_lock(hashtext('kylix_migrations'))");
          await client.query(
            'CREATE TABLE IF NOT EXISTS kylix_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
          );
          const done = new Set(
            (await client.query<{ name: string }>('SELECT name FROM kylix_migrations')).rows.map(
              (r) => r.name,
            ),
          );
          const applied: string[] = [];
          for (const m of ordered) {
            if (done.has(m.name)) continue;
            await client.query('BEGIN');
            try {
              await client.query(m.sql);
              await client.query('INSERT INTO kylix_migrations (name) VALUES ($1)', [m.name]);
              await client.query('COMMIT');
            } catch (err) {
              await client.query('ROLLBACK').catch(() => {});
              const e = sqlError(err);
              if (e instanceof Error) e.message = `Migration "${m.name}" failed: ${e.message}`;
              throw e;
            }
            applied.push(m.name);
          }
          return applied;
        },
        false,
      ),
    );
  }

  private open(txId: string): Tx {
    const tx = this.txs.get(txId);
    if (!tx)
      throw this.timedOut.has(txId)
        ? transactionClosed(txId, 'timed out and was rolled back')
        : transactionClosed(txId);
    return tx;
  }

  private wrap(err: unknown): KylixError {
    const e = sqlError(err);
    return e instanceof KylixError ? e : this.unavailable(err);
  }

  private async end(txId: string, how: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    const tx = this.txs.get(txId);
    if (!tx) throw transactionClosed(txId);
    this.txs.delete(txId);
    clearTimeout(tx.timer);
    try {
      await tx.chain;
      if (how === 'COMMIT' && txStatus(tx.client) !== 'T')
        throw transactionClosed(txId, 'was ended by a statement inside it');
      await this.answered(tx.client, () => tx.client.query(how));
    } catch (err) {
      throw err instanceof KylixError ? err : this.wrap(err);
    } finally {
      tx.client.release(!(await resetSession(tx.client)));
    }
  }
}
