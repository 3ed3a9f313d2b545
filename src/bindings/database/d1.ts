/**
 * Cloudflare D1's shapes over the PostgreSQL dialect, on the supervisor side: statements with
 * SQLite's `?`/`?NNN` placeholders become PostgreSQL's `$n`, results come back as D1's
 * `{ results, success, meta }`, and `exec()`'s multi-statement text is split into statements that
 * run as one batch. The guest's D1Database (src/sandbox/bindings/database.ts) builds `first()`,
 * `all()`, `run()` and `raw()` from what these return.
 */
import { TEXT_TYPES } from './common.js';
import type { SqlResult, Statement } from './interface.js';
import { splitStatements, statementVerb, translatePlaceholders } from './sql-scan.js';
import { sqliteToPostgres } from './sqlite-translate.js';

/** D1's result metadata. */
export interface D1Meta {
  duration: number;
  changes: number;
  last_row_id: number;
  rows_read: number;
  rows_written: number;
  changed_db: boolean;
  size_after: number;
  served_by: string;
}

/** One statement's result as it crosses to the guest: D1's fields plus the column order (for raw()). */
export interface D1Wire {
  results: Record<string, unknown>[];
  columns: string[];
  success: true;
  meta: D1Meta;
}

/** numeric: PostgreSQL's exact decimal, which sum(bigint) and avg() return. */
const NUMERIC = 1700;
/** Statements that write rows (their row count is D1's `changes`). */
const WRITES = new Set(['insert', 'update', 'delete', 'merge']);
/** Statements that change the schema (D1's changed_db, with no rows to count). */
const DDL = new Set(['create', 'alter', 'drop', 'truncate', 'comment', 'grant', 'revoke']);

/** A D1 statement as a provider runs it: placeholders translated, lastval() asked for INSERTs. */
function d1Statement(text: string, params: unknown[]): Statement {
  const sql = translatePlaceholders(text);
  const verb = statementVerb(sql);
  return { sql, params, ...(verb === 'insert' ? { lastRowId: true } : {}) };
}

/**
 * D1 statements as a provider runs them: SQLite-only constructs translated (sqlite-translate.ts),
 * which may bring statements along (a rowid trigger, foreign keys added last); `first[i]` is where
 * the i-th statement's own result is. `placeholders: false` for exec(), which binds nothing.
 */
export function d1Statements(
  list: readonly { sql: string; params?: unknown[] }[],
  placeholders = true,
): { statements: Statement[]; first: number[] } {
  const { statements, first } = sqliteToPostgres(
    list.map((s) => s.sql),
    true,
  );
  const own = new Map(first.map((at, i) => [at, list[i]!.params ?? []]));
  return {
    statements: statements.map((sql, at) => (placeholders ? d1Statement(sql, own.get(at) ?? []) : { sql })),
    first,
  };
}

/** The statements of an exec() text, each without parameters. */
export function d1ExecStatements(sql: string): Statement[] {
  return splitStatements(sql).map((s) => ({ sql: s }));
}

/**
 * A number where D1 would give one: bigint (count(*), serial ids) and numeric (sum, avg) values
 * that a double holds exactly; larger or more precise ones stay strings, so nothing is rounded.
 */
function d1Value(value: unknown, type: number): unknown {
  if (typeof value !== 'string') return value;
  if (type === TEXT_TYPES.INT8) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (type === NUMERIC) {
    const n = Number(value);
    const canonical = value.includes('.') ? value.replace(/\.?0+$/, '') : value;
    return Number.isFinite(n) && String(n) === canonical ? n : value;
  }
  return value;
}

/** Shapes one provider result as D1's. */
export function d1Result(statement: Statement, r: SqlResult, durationMs: number, servedBy: string): D1Wire {
  const verb = statementVerb(statement.sql);
  const convert = r.fields.filter((f) => f.dataTypeID === TEXT_TYPES.INT8 || f.dataTypeID === NUMERIC);
  const results =
    convert.length === 0
      ? r.rows
      : r.rows.map((row) => {
          const out = { ...row };
          for (const f of convert) out[f.name] = d1Value(row[f.name], f.dataTypeID);
          return out;
        });
  const changes = WRITES.has(verb) ? r.rowCount : 0;
  const lastRowId = r.lastRowId == null ? 0 : Number(r.lastRowId);
  return {
    results,
    columns: r.fields.map((f) => f.name),
    success: true,
    meta: {
      duration: durationMs,
      changes,
      last_row_id: Number.isSafeInteger(lastRowId) ? lastRowId : 0,
      rows_read: WRITES.has(verb) ? changes : r.rows.length,
      rows_written: changes,
      changed_db: changes > 0 || DDL.has(verb),
      // PostgreSQL's pg_database_size() would cost a catalog walk per statement: not measured.
      size_after: 0,
      served_by: `kylix-${servedBy}`,
    },
  };
}
