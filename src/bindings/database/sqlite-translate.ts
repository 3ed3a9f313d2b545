/**
 * The few SQLite constructs D1 apps send that PostgreSQL can never accept, turned into what means
 * the same in PostgreSQL. drizzle-orm/d1 and drizzle-kit's migrations are made of them: backtick
 * identifiers, `integer PRIMARY KEY AUTOINCREMENT`, `unixepoch()`, `json_group_array()`,
 * `ON CONFLICT ("t"."c")`, a DATETIME column, `DELETE … LIMIT` and `INSERT OR IGNORE` (sqlite-dml.ts). A statement holding none of them is left byte for byte as written, so
 * valid PostgreSQL is never rewritten; one that holds any is SQLite, and within it SQLite's column
 * types keep SQLite's meaning (sqlite-ddl.ts). Each translation is listed in
 * docs/workers-compatibility.md; anything else SQLite-only still meets sqlite-hints.ts.
 */
import { splitStatements } from './sql-scan.js';
import { hasSqliteType, ROWID_FUNCTION, translateDdl } from './sqlite-ddl.js';
import { translateInsertOrIgnore, translateLimitedDml } from './sqlite-dml.js';
import { blank, parenMatches, sig, type Tok, type Translated, tokenize, word } from './sqlite-tokens.js';

/** SQLite functions PostgreSQL does not have, renamed to the PostgreSQL function that does the same. */
const RENAMED: Record<string, string> = {
  json_group_array: 'json_agg',
  json_group_object: 'json_object_agg',
};

/** SQLite's unixepoch(): whole seconds, truncated as SQLite truncates. */
const UNIXEPOCH = '(floor(extract(epoch from now()))::bigint)';

/**
 * Rewrites the function calls and ON CONFLICT targets of `toks` in place; says whether it found a
 * construct only SQLite accepts. `jsonArray`: also read json_array(…) as SQLite's (D1 calls).
 */
function translateCalls(toks: Tok[], jsonArray: boolean): boolean {
  let sqlite = false;
  // Tokens are replaced in place, never spliced, so `match` stays right and each loop is linear.
  const match = parenMatches(toks);
  let scanned = 0;
  for (let k = 0; k < toks.length; k++) {
    const w = word(toks[k]);
    if (!w) continue;
    if (w === 'autoincrement') sqlite = true;
    const open = sig(toks, k + 1);
    if (toks[open]?.text === '(' && toks[open]?.kind === 'punct') {
      const end = match[open]!;
      if (
        ((w === 'unixepoch' && sig(toks, open + 1) === end) ||
          (w === 'strftime' && epochNow(toks, open, end))) &&
        end < toks.length
      ) {
        toks[k] = { kind: 'word', text: UNIXEPOCH };
        for (let j = k + 1; j <= end; j++) toks[j] = blank();
        sqlite = true;
      } else if (Object.hasOwn(RENAMED, w)) {
        toks[k] = { kind: 'word', text: RENAMED[w]! };
        sqlite = true;
      } else if (w === 'json_array' && jsonArray && !hasJsonClause(toks, match, open, end)) {
        // SQLite's json_array keeps NULLs (PostgreSQL 16's SQL-standard JSON_ARRAY drops them).
        toks[k] = { kind: 'word', text: 'json_build_array' };
      }
    }
    // ON CONFLICT ("t"."c"): SQLite takes a qualified column as the target, PostgreSQL only "c".
    if (w === 'on' && word(toks[sig(toks, k + 1)]) === 'conflict') {
      const open2 = sig(toks, sig(toks, k + 1) + 1);
      if (toks[open2]?.text !== '(' || toks[open2]?.kind !== 'punct') continue;
      const end = match[open2]!;
      // Where an earlier target's scan stopped: a target nested in it is not scanned again.
      let j = Math.max(open2 + 1, scanned);
      for (; j < end; j++) {
        const name = toks[j]!;
        if (name.kind !== 'ident' && name.kind !== 'word') continue;
        const dot = sig(toks, j + 1);
        if (toks[dot]?.text === '.' && dot < end) {
          for (let x = j; x <= dot; x++) toks[x] = blank();
          sqlite = true;
          break;
        }
      }
      scanned = j;
    }
  }
  return sqlite;
}

/**
 * Whether strftime(…)'s arguments are exactly '%s', 'now' (SQLite's idiom for unixepoch() before it
 * had one): the tokens right after the parenthesis, so nested calls are not read again.
 */
function epochNow(toks: readonly Tok[], open: number, end: number): boolean {
  const format = sig(toks, open + 1);
  const comma = sig(toks, format + 1);
  const now = sig(toks, comma + 1);
  return (
    sig(toks, now + 1) === end &&
    toks[format]?.text.toLowerCase() === "'%s'" &&
    toks[comma]?.text === ',' &&
    toks[now]?.text.toLowerCase() === "'now'"
  );
}

/** Whether a json_array(…) call holds the SQL-standard clauses (ABSENT ON NULL, RETURNING…) at its own level. */
function hasJsonClause(toks: readonly Tok[], match: Int32Array, open: number, end: number): boolean {
  for (let k = open + 1; k < end; k++) {
    const t = toks[k]!;
    // Nested parentheses are stepped over: each token is looked at for one call only.
    if (t.kind === 'punct' && t.text === '(') k = match[k]!;
    else if (/^(on|returning|format)$/.test(word(t))) return true;
  }
  return false;
}

/** Translates one statement (see the file comment). `d1`: it came through the D1 API. */
export function translateStatement(sql: string, d1: boolean): Translated {
  const { toks, backticks } = tokenize(sql);
  const calls = translateCalls(toks, d1);
  const limited = translateLimitedDml(toks) ?? translateInsertOrIgnore(toks);
  if (limited !== undefined) return { statements: [limited], deferred: [] };
  if (!backticks && !calls && !hasSqliteType(toks)) {
    // Nothing SQLite-only: the statement stays as written, but for json_array() in a D1 call.
    const text = d1 ? toks.map((t) => t.text).join('') : sql;
    return { statements: [text], deferred: [] };
  }
  return translateDdl(toks);
}

/** Translates statements; `first[i]` is where the i-th input's statement is in the output. */
export function sqliteToPostgres(
  statements: readonly string[],
  d1: boolean,
): { statements: string[]; first: number[] } {
  const out: string[] = [];
  const deferred: string[] = [];
  const first: number[] = [];
  for (const s of statements) {
    const t = translateStatement(s, d1);
    first.push(out.length);
    // The rowid trigger function once per text, however many tables need it.
    out.push(...t.statements.filter((x) => x !== ROWID_FUNCTION || !out.includes(x)));
    deferred.push(...t.deferred);
  }
  return { statements: [...out, ...deferred], first };
}

/**
 * A migration's text, translated where it is SQLite (a wrangler migrations_dir, drizzle-kit's
 * output); a text with nothing SQLite-only in it is returned as it is, byte for byte.
 */
export function sqliteMigration(sql: string): string {
  const parts = splitStatements(sql);
  const { statements } = sqliteToPostgres(parts, false);
  const same = statements.length === parts.length && statements.every((s, i) => s === parts[i]);
  return same ? sql : `${statements.join(';\n')};\n`;
}
