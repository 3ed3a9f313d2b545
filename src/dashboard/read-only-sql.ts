/**
 * The dashboard's SQL console: one statement, run in a READ ONLY transaction that is always rolled
 * back. The transaction is what enforces it (PostgreSQL refuses any write in it, through a CTE, a
 * function or EXPLAIN ANALYZE alike); the checks before it only give a clearer error for the
 * obvious cases and close the ways out of the transaction: a second statement after a COMMIT
 * (the simple query protocol would run it), or switching the transaction to read-write.
 */
import type { DatabaseProvider, SqlResult } from '../bindings/database/interface.js';
import type { ResourceRef } from '../bindings/provider.js';
import { KylixError } from '../errors.js';

/** Statements the console runs: they read (a write inside them still meets the READ ONLY transaction). */
const READING = new Set(['select', 'with', 'explain', 'show', 'values', 'table']);

/** How long a console query may run before its transaction is rolled back. */
const TIMEOUT_MS = 15_000;

/** Rows sent back at most; the rest are counted, not shipped to the browser. */
export const MAX_ROWS = 1000;

/** The statement with comments removed and strings blanked, for finding keywords and semicolons. */
function skeleton(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      out += ' ';
    } else if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        const pair = sql.slice(i, i + 2);
        if (pair === '/*' || pair === '*/') {
          depth += pair === '/*' ? 1 : -1;
          i += 2;
        } else i++;
      }
      out += ' ';
    } else if (c === "'" || c === '"') {
      // Quoted strings and identifiers ('' and "" escape their quote; E'' backslashes too).
      const escapes = c === "'" && /[eE]$/.test(out) && !/\w[eE]$/.test(out);
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
      out += ' x ';
    } else if (c === '$') {
      const tag = /^\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i))?.[0];
      if (!tag) {
        out += c;
        i++;
        continue;
      }
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? n : end + tag.length;
      out += ' x ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Refuses what the console does not run, with a sentence that says why. */
export function checkReadOnlyStatement(sql: string): void {
  const bare = skeleton(sql).trim().replace(/;\s*$/, '');
  if (bare.includes(';'))
    throw new KylixError('ERR_BAD_REQUEST', 'The SQL console runs one statement at a time; send one.');
  const first = /^\(*\s*([A-Za-z]+)/.exec(bare)?.[1]?.toLowerCase();
  if (!first || !READING.has(first))
    throw new KylixError(
      'ERR_BAD_REQUEST',
      `The SQL console is read-only: it runs SELECT, WITH, EXPLAIN, SHOW, VALUES and TABLE statements${first ? `, not ${first.toUpperCase()}` : ''}. Use kylix sql to write.`,
    );
}

/** Runs one statement read-only: BEGIN, SET TRANSACTION READ ONLY, a snapshot, the statement, ROLLBACK. */
export async function runReadOnly(
  db: DatabaseProvider,
  ref: ResourceRef,
  sql: string,
  params: unknown[] = [],
): Promise<SqlResult & { truncated: boolean }> {
  checkReadOnlyStatement(sql);
  const tx = await db.begin(ref, TIMEOUT_MS);
  try {
    await db.queryInTransaction(tx, { sql: 'SET TRANSACTION READ ONLY' });
    // A first query takes the snapshot: from then on PostgreSQL refuses to make it read-write.
    await db.queryInTransaction(tx, { sql: 'SELECT 1' });
    const result = await db.queryInTransaction(tx, { sql, params });
    const truncated = result.rows.length > MAX_ROWS;
    return { ...result, rows: truncated ? result.rows.slice(0, MAX_ROWS) : result.rows, truncated };
  } finally {
    // A failed statement may have ended the transaction already (the provider rolls it back).
    await db.rollback(tx).catch(() => {});
  }
}
