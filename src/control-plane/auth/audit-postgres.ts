/**
 * The fleet's audit log: a table in the installation's PostgreSQL schema, beside the state store's,
 * so every node appends to and reads from one log. The `pg` driver is imported only when it opens.
 */
import type { Pool } from 'pg';
import { KylixError } from '../../errors.js';
import type { AuditEntry } from '../../resources/access.js';
import { guardPool } from '../../storage/pg-errors.js';
import type { AuditLog, AuditQuery } from './audit.js';

/** Connects and creates the table if needed. */
export async function openPostgresAuditLog(url: string, schema: string): Promise<AuditLog> {
  const pg = ((await import('pg')) as unknown as { default: typeof import('pg') }).default;
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    connectionTimeoutMillis: 10_000,
    query_timeout: 30_000,
  });
  guardPool(pool);
  const table = `"${schema}"."audit"`;
  const client = await pool.connect().catch(async (err) => {
    await pool.end().catch(() => {});
    throw unavailable(err);
  });
  try {
    // Nodes starting together must not both create it (the state store takes the same lock).
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
      seq bigserial PRIMARY KEY, time timestamptz NOT NULL, namespace text, entry json NOT NULL)`);
    await client.query(`CREATE INDEX IF NOT EXISTS audit_time ON ${table} (time)`);
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [schema]).catch(() => {});
    client.release();
  }
  return new PostgresAuditLog(pool, table);
}

function unavailable(err: unknown): KylixError {
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `The audit log (PostgreSQL) failed: ${(err as Error).message}. Check that the state store's server runs.`,
  );
}

class PostgresAuditLog implements AuditLog {
  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {}

  async append(entry: AuditEntry): Promise<void> {
    await this.pool
      .query(`INSERT INTO ${this.table} (time, namespace, entry) VALUES ($1, $2, $3)`, [
        entry.time,
        entry.namespace ?? null,
        JSON.stringify(entry),
      ])
      .catch((err) => {
        throw unavailable(err);
      });
  }

  async query(q: AuditQuery): Promise<AuditEntry[]> {
    const r = await this.pool
      .query<{ entry: AuditEntry }>(
        `SELECT entry FROM ${this.table}
         WHERE ($1::timestamptz IS NULL OR time >= $1) AND ($2::text IS NULL OR namespace = $2)
         ORDER BY seq DESC LIMIT $3`,
        [q.since?.toISOString() ?? null, q.namespace ?? null, q.limit],
      )
      .catch((err) => {
        throw unavailable(err);
      });
    return r.rows.map((row) => row.entry).reverse();
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }
}
