/** What both Database providers share: names, SQL errors, result shapes and migration checks. */
import { type ErrorCode, KylixError } from '../../errors.js';
import { resourceIdentity } from '../identity.js';
import type { ResourceRef } from '../provider.js';
import type { SqlResult } from './interface.js';

/** A SQL error as PostgreSQL reported it: the message and SQLSTATE are PostgreSQL's own. */
export class SqlError extends KylixError {
  /** The five-character SQLSTATE, e.g. 42P01 (undefined table) or 23505 (unique violation). */
  readonly sqlState: string;
  readonly detail?: string;

  constructor(message: string, sqlState: string, detail?: string, code: ErrorCode = 'ERR_SQL') {
    super(code, `${message} (SQLSTATE ${sqlState})`);
    this.sqlState = sqlState;
    this.detail = detail;
  }
}

/** An error in a form that crosses a worker boundary (class and fields survive). */
export interface WireError {
  code: ErrorCode;
  message: string;
  sqlState?: string;
  detail?: string;
}

/** Flattens an error for postMessage. */
export function toWire(err: unknown): WireError {
  if (err instanceof SqlError)
    return { code: err.code, message: err.message, sqlState: err.sqlState, detail: err.detail };
  if (err instanceof KylixError) return { code: err.code, message: err.message };
  return {
    code: 'ERR_BACKEND_UNAVAILABLE',
    message: `The database engine failed: ${(err as Error).message}`,
  };
}

/** Rebuilds the error a worker sent. */
export function fromWire(w: WireError): KylixError {
  if (w.sqlState) {
    const e = new SqlError('', w.sqlState, w.detail, w.code);
    e.message = w.message;
    return e;
  }
  return new KylixError(w.code, w.message);
}

/** Turns a driver error that carries a SQLSTATE into a SqlError; anything else passes through. */
export function sqlError(err: unknown): unknown {
  const e = err as { code?: unknown; message?: string; detail?: string };
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    // 57014 query_canceled: the provider stopped a statement that ran past its time.
    if (e.code === '57014') return statementTimedOut();
    // The server, not the statement: starting up or shutting down (57P01–57P05), connection
    // failures (08), out of disk, memory or connections (53), its own system errors (58).
    if (/^(08|53|57P|58)/.test(e.code))
      return new SqlError(
        `The database server cannot run statements now: ${e.message ?? 'unavailable'}; retry shortly`,
        e.code,
        e.detail ?? undefined,
        'ERR_BACKEND_UNAVAILABLE',
      );
    return new SqlError(e.message ?? 'SQL error', e.code, e.detail ?? undefined);
  }
  return err;
}

/** A statement (or the call holding it) ran past the Database's statement timeout and was stopped. */
export function statementTimedOut(ms?: number): SqlError {
  return new SqlError(
    `The SQL statement ran past its time${ms ? ` (${ms} ms)` : ''} and was stopped; make it faster or split it up`,
    '57014',
    undefined,
    'ERR_TIMEOUT',
  );
}

/** The PostgreSQL database (postgres) or schema (embedded) of a resource: see resourceIdentity(). */
export function identifierFor(ref: ResourceRef): string {
  return resourceIdentity(ref).sql;
}

/** Double-quotes an identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The error for a Database that was never ensured (or was purged). */
export function notFound(ref: ResourceRef): KylixError {
  return new KylixError(
    'ERR_NOT_FOUND',
    `Database "${ref.name}" does not exist in namespace "${ref.namespace}". Apply its manifest first.`,
  );
}

/** The error for a transaction id that is no longer open. */
export function transactionClosed(txId: string, why = 'was committed, rolled back or timed out'): KylixError {
  return new KylixError('ERR_TRANSACTION_CLOSED', `Transaction ${txId} ${why}; begin a new one.`);
}

/** Checks migrations and returns them in the order they apply (by name). */
export function orderMigrations(
  migrations: { name: string; sql: string }[],
): { name: string; sql: string }[] {
  const seen = new Set<string>();
  for (const m of migrations) {
    if (!m.name || typeof m.sql !== 'string')
      throw new KylixError('ERR_BAD_REQUEST', 'Every migration needs a name and its SQL.');
    if (seen.has(m.name)) throw new KylixError('ERR_BAD_REQUEST', `Migration "${m.name}" is listed twice.`);
    seen.add(m.name);
  }
  return [...migrations].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Shapes a driver result (pg or PGlite) into a SqlResult. */
export function toResult(r: {
  rows: unknown[];
  rowCount?: number | null;
  affectedRows?: number;
  fields: { name: string; dataTypeID: number }[];
}): SqlResult {
  return {
    rows: r.rows as Record<string, unknown>[],
    rowCount: r.rowCount ?? r.affectedRows ?? r.rows.length,
    fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
  };
}

/** PostgreSQL type ids whose text form both providers return as-is, so results match everywhere. */
export const TEXT_TYPES = {
  /** int8: a string, as node-postgres returns it, because it may exceed 2^53. */
  INT8: 20,
  /** date: 'YYYY-MM-DD', not a Date at a time-zone-dependent midnight. */
  DATE: 1082,
} as const;

/**
 * lastval() of a session, or null when no sequence was drawn; `query` runs SQL on that session.
 * Inside a transaction its error (55000) must not abort the transaction: it runs under a savepoint
 * there. Both providers call it (PostgreSQL's connection, PGlite's worker).
 */
export async function lastvalOf(
  inTx: boolean,
  query: (sql: string) => Promise<{ rows: unknown[] }>,
): Promise<string | null> {
  if (inTx) await query('SAVEPOINT kylix_lastval');
  try {
    const r = await query('SELECT lastval()::text AS v');
    if (inTx) await query('RELEASE SAVEPOINT kylix_lastval');
    return (r.rows[0] as { v?: string } | undefined)?.v ?? null;
  } catch {
    if (inTx) {
      await query('ROLLBACK TO SAVEPOINT kylix_lastval');
      await query('RELEASE SAVEPOINT kylix_lastval');
    }
    return null;
  }
}
