/**
 * The Database binding: PostgreSQL dialect everywhere. Parameterized queries, atomic batches,
 * interactive transactions that roll back on error, and migrations applied once each.
 * Providers: embedded (PGlite, off the gateway's event loop) and postgres.
 */
import type { Provider, ResourceRef } from '../provider.js';

/** What a statement returned. */
export interface SqlResult {
  rows: Record<string, unknown>[];
  /** Rows returned or affected. */
  rowCount: number;
  fields: { name: string; dataTypeID: number }[];
  /** lastval() after the statement, when it asked (`lastRowId`): the sequence value it drew, as text. */
  lastRowId?: string | null;
}

/** One statement with its parameters ($1, $2, …). */
export interface Statement {
  sql: string;
  params?: unknown[];
  /**
   * Also report lastval() (D1's meta.last_row_id for an INSERT into a serial/identity table). Set
   * by the supervisor only, never taken from a function's arguments.
   */
  lastRowId?: boolean;
  /**
   * How it runs while the data disk is in its reserve (disk-writes.ts): 'read' in a read-only
   * transaction, 'room' only in a database that holds no code of its own. Set by the supervisor only.
   */
  reserve?: 'read' | 'room';
}

/** A Database backend. */
export interface DatabaseProvider extends Provider {
  query(ref: ResourceRef, statement: Statement): Promise<SqlResult>;
  /** Runs every statement in one transaction; any error rolls all of them back. */
  batch(ref: ResourceRef, statements: Statement[]): Promise<SqlResult[]>;
  /** Opens an interactive transaction; it is rolled back if not finished within `timeoutMs`. */
  begin(ref: ResourceRef, timeoutMs: number): Promise<string>;
  queryInTransaction(txId: string, statement: Statement): Promise<SqlResult>;
  commit(txId: string): Promise<void>;
  rollback(txId: string): Promise<void>;
  /** Applies, in name order, the migrations not applied before; returns the names it applied. */
  migrate(ref: ResourceRef, migrations: { name: string; sql: string }[]): Promise<string[]>;
}
