/**
 * The PostgreSQL Database provider: a DATABASE per resource (resourceIdentity().sql, created on
 * ensure, dropped on purge), so resources are isolated by PostgreSQL itself; a small pool per
 * resource; interactive transactions on a dedicated client that is rolled back on timeout.
 * The `pg` driver is imported only when this provider is opened.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { KylixError } from '../../errors.js';
import type { Health, ResourceRef } from '../provider.js';
import {
  identifierFor,
  notFound,
  orderMigrations,
  quoteIdent,
  sqlError,
  TEXT_TYPES,
  toResult,
  transactionClosed,
} from './common.js';
import type { DatabaseProvider, SqlResult, Statement } from './interface.js';

/** Options of the postgres provider. */
export interface PostgresDatabaseOptions {
  /** postgres://user@host:port/db — the database Kylix connects to for CREATE/DROP DATABASE. */
  url: string;
  /** Connections per resource. */
  poolSize?: number;
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

/** node-postgres sends a Buffer as bytea but JSON-encodes any other Uint8Array: pass bytes as Buffers. */
function params(statement: Statement): unknown[] {
  return (statement.params ?? []).map((p) =>
    p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p,
  );
}

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
  return provider;
}

/** The PostgreSQL Database provider; see the file comment. */
export class PostgresDatabaseProvider implements DatabaseProvider {
  readonly name = 'postgres';
  private readonly admin: Pool;
  private readonly pools = new Map<string, Pool>();
  private readonly txs = new Map<string, Tx>();
  private readonly timedOut = new Set<string>();

  constructor(
    private readonly pg: PgModule,
    private readonly options: PostgresDatabaseOptions,
  ) {
    this.admin = this.newPool(options.url, 2);
  }

  /** A pool whose results match the embedded provider's types (see TEXT_TYPES). */
  private newPool(connectionString: string, max: number): Pool {
    const types = this.pg.types;
    const pool = new this.pg.Pool({
      connectionString,
      max,
      idleTimeoutMillis: 30_000,
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
    // An idle client whose connection dies (a dropped database, a server restart) must not crash the node.
    pool.on('error', () => {});
    return pool;
  }

  private pool(ref: ResourceRef): Pool {
    const db = identifierFor(ref);
    let pool = this.pools.get(db);
    if (!pool) {
      const url = new URL(this.options.url);
      url.pathname = `/${db}`;
      pool = this.newPool(url.toString(), this.options.poolSize ?? 5);
      this.pools.set(db, pool);
    }
    return pool;
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
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', `PostgreSQL failed: ${(err as Error).message}`);
    }
  }

  async ensure(ref: ResourceRef): Promise<void> {
    const db = identifierFor(ref);
    await this.guard(undefined, async () => {
      const exists = await this.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (exists.rowCount) return;
      try {
        await this.admin.query(`CREATE DATABASE ${quoteIdent(db)}`);
      } catch (err) {
        // Another node created it at the same moment.
        if ((err as { code?: string }).code !== '42P04' && (err as { code?: string }).code !== '23505')
          throw err;
      }
    });
  }

  async purge(ref: ResourceRef): Promise<void> {
    const db = identifierFor(ref);
    const pool = this.pools.get(db);
    this.pools.delete(db);
    await pool?.end().catch(() => {});
    await this.guard(undefined, () =>
      this.admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`),
    );
  }

  async health(): Promise<Health> {
    try {
      const r = await this.admin.query<{ v: string }>('SELECT version() AS v');
      return { ok: true, message: `${r.rows[0]?.v.split(',')[0]}, one database per resource.` };
    } catch (err) {
      const where = new URL(this.options.url);
      where.password = '';
      return { ok: false, message: `Cannot reach PostgreSQL at ${where.host}: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    for (const txId of [...this.txs.keys()]) await this.end(txId, 'ROLLBACK').catch(() => {});
    await Promise.all([...this.pools.values(), this.admin].map((p) => p.end().catch(() => {})));
    this.pools.clear();
  }

  query(ref: ResourceRef, statement: Statement): Promise<SqlResult> {
    return this.guard(ref, async () =>
      toResult(await this.pool(ref).query(statement.sql, params(statement))),
    );
  }

  batch(ref: ResourceRef, statements: Statement[]): Promise<SqlResult[]> {
    return this.guard(ref, async () => {
      const client = await this.pool(ref).connect();
      try {
        await client.query('BEGIN');
        const out: SqlResult[] = [];
        for (const s of statements) out.push(toResult(await client.query(s.sql, params(s))));
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    });
  }

  async begin(ref: ResourceRef, timeoutMs: number): Promise<string> {
    const client = await this.guard(ref, () => this.pool(ref).connect());
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
      if (tx?.running && pid) this.admin.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {});
      this.end(txId, 'ROLLBACK').catch(() => {});
    }, timeoutMs);
    this.txs.set(txId, { client, timer, chain: Promise.resolve(), running: 0 });
    return txId;
  }

  async queryInTransaction(txId: string, statement: Statement): Promise<SqlResult> {
    const tx = this.open(txId);
    tx.running++;
    const result = tx.chain
      .then(() => tx.client.query(statement.sql, params(statement)))
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
    return this.guard(ref, async () => {
      const client = await this.pool(ref).connect();
      try {
        // Nodes that start together take turns; each applies only what the previous left undone.
        await client.query("SELECT pg_advisory_lock(hashtext('kylix_migrations'))");
        await client.query(
          'CREATE TABLE IF NOT EXISTS kylix_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        const done = new Set(
          (await client.query<{ name: string }>('SELECT name FROM kylix_migrations')).rows.map((r) => r.name),
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
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('kylix_migrations'))").catch(() => {});
        client.release();
      }
    });
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
    return e instanceof KylixError
      ? e
      : new KylixError('ERR_BACKEND_UNAVAILABLE', `PostgreSQL failed: ${(err as Error).message}`);
  }

  private async end(txId: string, how: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    const tx = this.txs.get(txId);
    if (!tx) throw transactionClosed(txId);
    this.txs.delete(txId);
    clearTimeout(tx.timer);
    let broken = false;
    try {
      await tx.chain;
      await tx.client.query(how);
    } catch (err) {
      broken = true;
      await tx.client.query('ROLLBACK').catch(() => {});
      throw this.wrap(err);
    } finally {
      tx.client.release(broken);
    }
  }
}
