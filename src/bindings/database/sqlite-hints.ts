/**
 * SQL written for SQLite (D1) meets PostgreSQL here. Nothing is refused ahead of time: valid
 * PostgreSQL must never be turned away by a guess. Only when PostgreSQL itself rejects a statement
 * (a syntax error, an unknown function, table, column or collation) is the SQL scanned for the
 * constructs only SQLite understands; the error then says so, names the first one found, and says
 * what to write instead. The SQLSTATE stays PostgreSQL's.
 */
import { KylixError } from '../../errors.js';
import { SqlError } from './common.js';
import { codeWords } from './sql-scan.js';

/** SQLSTATEs with which PostgreSQL refuses SQL it does not understand. */
const NOT_UNDERSTOOD = new Set(['42601', '42883', '42P01', '42703', '42704', '0A000', '42P18', '42804']);

/** SQLite functions PostgreSQL lacks, and what to call instead. */
const FUNCTIONS: Record<string, string> = {
  datetime: "now() or to_timestamp(…) (datetime('now') is now())",
  julianday: 'extract(julian from …) or date arithmetic',
  strftime: "to_char(ts, 'YYYY-MM-DD') or extract(epoch from ts)",
  unixepoch: 'extract(epoch from now())::bigint',
  ifnull: 'coalesce(…)',
  group_concat: "string_agg(x, ',')",
  instr: 'strpos(haystack, needle)',
  last_insert_rowid: 'INSERT … RETURNING id',
  changes: 'the result’s row count (meta.changes)',
  total_changes: 'the result’s row count (meta.changes)',
  randomblob: 'gen_random_uuid() or random()',
  zeroblob: "decode(repeat('00', n), 'hex')",
  typeof: 'pg_typeof(…)',
  json_extract: "-> / ->> (col->>'field') or jsonb_path_query",
  json_group_array: 'json_agg(…)',
  json_group_object: 'json_object_agg(…)',
  iif: 'CASE WHEN … THEN … ELSE … END',
  printf: 'format(…)',
  total: 'coalesce(sum(…), 0)',
  sqlite_version: 'version()',
};

/** Tables only SQLite has. */
const TABLES = /^(sqlite_master|sqlite_schema|sqlite_temp_master|sqlite_sequence|sqlite_stat1)$/;

/** The first SQLite-only construct in `sql`, with what to write instead; undefined if there is none. */
export function sqliteConstruct(sql: string): { construct: string; instead: string } | undefined {
  const w = codeWords(sql);
  const at = (k: number) => w[k] ?? '';
  for (let k = 0; k < w.length; k++) {
    const word = at(k);
    const first = k === 0 || at(k - 1) === ';';
    if (word === '`')
      return { construct: 'backtick-quoted identifiers', instead: '"double quotes" around identifiers' };
    if (word === 'autoincrement')
      return {
        construct: 'AUTOINCREMENT',
        instead: 'id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY (or serial)',
      };
    if (word === 'insert' && at(k + 1) === 'or') {
      const how = at(k + 2).toUpperCase();
      return {
        construct: `INSERT OR ${how}`,
        instead:
          how === 'REPLACE'
            ? 'INSERT … ON CONFLICT (key) DO UPDATE SET col = excluded.col'
            : 'INSERT … ON CONFLICT DO NOTHING',
      };
    }
    if (word === 'replace' && first && at(k + 1) === 'into')
      return {
        construct: 'REPLACE INTO',
        instead: 'INSERT … ON CONFLICT (key) DO UPDATE SET col = excluded.col',
      };
    if (word === 'pragma' && first)
      return { construct: 'PRAGMA', instead: 'information_schema views, or SET for settings' };
    if (word === 'without' && at(k + 1) === 'rowid')
      return { construct: 'WITHOUT ROWID', instead: 'leave it out: PostgreSQL tables have no rowid' };
    if (word === 'rowid' || word === '_rowid_')
      return { construct: word, instead: 'a primary key column (PostgreSQL tables have no rowid)' };
    if (TABLES.test(word))
      return { construct: word, instead: 'information_schema.tables and information_schema.columns' };
    if (word === 'collate' && /^(nocase|rtrim|binary)$/.test(at(k + 1)))
      return {
        construct: `COLLATE ${at(k + 1).toUpperCase()}`,
        instead: 'lower(…) on both sides, ILIKE, or the citext type',
      };
    if (word === 'glob') return { construct: 'GLOB', instead: 'LIKE, or ~ with a regular expression' };
    // The type (the function is the word with its parenthesis, below).
    if (word === 'datetime') return { construct: 'the DATETIME type', instead: 'timestamptz (or timestamp)' };
    if (
      (word === 'delete' || word === 'update') &&
      first &&
      w.slice(k + 1).some((x, i) => x === 'limit' && !w.slice(k + 1, k + 1 + i).includes(';'))
    )
      return {
        construct: `${word.toUpperCase()} … LIMIT`,
        instead: `${word.toUpperCase()} … WHERE id IN (SELECT id FROM … LIMIT n)`,
      };
    if ((word === 'attach' || word === 'detach') && first)
      return { construct: `${word.toUpperCase()} DATABASE`, instead: 'one Database resource per database' };
    if (word === 'begin' && /^(immediate|deferred|exclusive)$/.test(at(k + 1)))
      return {
        construct: `BEGIN ${at(k + 1).toUpperCase()}`,
        instead: 'env.DB.batch([...]) or BEGIN (PostgreSQL takes no lock mode there)',
      };
    if (word.endsWith('(')) {
      const name = word.slice(0, -1);
      const instead = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
      if (instead) return { construct: `${name}()`, instead };
    }
  }
  return undefined;
}

/**
 * When PostgreSQL did not understand one of `statements` and one of them holds a construct only
 * SQLite understands, the same error (same code and SQLSTATE) saying so; otherwise `err` itself.
 */
export function explainSqlite(err: unknown, statements: readonly string[]): unknown {
  if (!(err instanceof SqlError) || !NOT_UNDERSTOOD.has(err.sqlState)) return err;
  for (const sql of statements) {
    const found = sqliteConstruct(sql);
    if (!found) continue;
    const explained = new SqlError('', err.sqlState, err.detail, err.code);
    explained.message = `${found.construct} is SQLite, and Kylix Databases speak PostgreSQL: use ${found.instead}. PostgreSQL said: ${err.message}`;
    return explained;
  }
  return err;
}

/** Runs `fn`; a SQL error it throws is explained (see explainSqlite) against `statements`. */
export async function withSqliteHints<T>(statements: readonly string[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const explained = explainSqlite(err, statements);
    throw explained instanceof KylixError ? explained : err;
  }
}

/**
 * How SQLite words the errors D1 apps look for (`no such table: Orders`), for PostgreSQL's:
 * undefined table or column, unique and not-null violations. Names keep the case the statement
 * wrote them in (PostgreSQL folds them).
 */
function sqliteWording(err: SqlError, statements: readonly string[]): string | undefined {
  const asWritten = (name: string) => {
    const re = new RegExp(`\\b${name.replace(/[^\w]/g, '')}\\b`, 'i');
    for (const sql of statements) {
      const m = re.exec(sql);
      if (m) return m[0];
    }
    return name;
  };
  const quoted = [...err.message.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  switch (err.sqlState) {
    case '42P01':
      return quoted[0] && `no such table: ${asWritten(quoted[0])}: SQLITE_ERROR`;
    case '42703':
      return quoted[0] && `no such column: ${asWritten(quoted[0].split('.').at(-1)!)}: SQLITE_ERROR`;
    case '23505': {
      const cols = /Key \(([^)]+)\)=/.exec(err.detail ?? '')?.[1];
      return `UNIQUE constraint failed${cols ? `: ${cols.split(', ').map(asWritten).join(', ')}` : ''}: SQLITE_CONSTRAINT`;
    }
    case '23502':
      return quoted.length >= 2
        ? `NOT NULL constraint failed: ${asWritten(quoted[1]!)}.${asWritten(quoted[0]!)}: SQLITE_CONSTRAINT`
        : undefined;
  }
  return undefined;
}

/**
 * For the D1 API: withSqliteHints, and errors worded as D1 words them (`D1_ERROR: no such table:
 * Orders: SQLITE_ERROR`) ahead of PostgreSQL's own, which apps written for D1 match on.
 */
export async function withD1Errors<T>(statements: readonly string[], fn: () => Promise<T>): Promise<T> {
  try {
    return await withSqliteHints(statements, fn);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    const wording = sqliteWording(err, statements);
    if (!wording) throw err;
    const worded = new SqlError('', err.sqlState, err.detail, err.code);
    worded.message = `D1_ERROR: ${wording} (PostgreSQL: ${err.message})`;
    throw worded;
  }
}
