/**
 * A small scanner over PostgreSQL text that knows where code is and where it is not (string
 * literals, E'' strings, quoted identifiers, dollar-quoted bodies, -- and nested block comments).
 * D1-shaped calls need three things only code may decide: where `?`/`?NNN` placeholders are, where
 * one statement ends, and which words a statement is made of (for SQLite-only constructs).
 */
import { KylixError } from '../../errors.js';

/** A piece of SQL text: code, or something that is not code (kept byte for byte). */
export interface Piece {
  kind: 'code' | 'string' | 'ident' | 'body' | 'comment';
  text: string;
}

/** A character that can be part of a word in code (an identifier, a keyword, a number, a parameter). */
const WORD_CHAR = /[A-Za-z0-9_$]/;
const isWordChar = (c: string | undefined) => c !== undefined && WORD_CHAR.test(c);

/**
 * Splits SQL into pieces; an unterminated literal or comment runs to the end (PostgreSQL reports it).
 * One pass, each character looked at a bounded number of times: a function's SQL (up to a binding
 * call's size) is scanned on the supervisor's thread.
 */
export function scan(sql: string): Piece[] {
  const out: Piece[] = [];
  /** Where the run of code that ends at the current piece began (-1: none since the last piece). */
  let codeFrom = -1;
  /** Ends the run of code at `end`. */
  const flush = (end: number) => {
    if (codeFrom >= 0 && end > codeFrom) out.push({ kind: 'code', text: sql.slice(codeFrom, end) });
    codeFrom = -1;
  };
  /** The code character `back` places before `at`, if the run of code reaches back that far. */
  const codeBefore = (at: number, back: number) =>
    codeFrom >= 0 && at - back >= codeFrom ? sql[at - back] : undefined;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const start = i;
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      flush(start);
      out.push({ kind: 'comment', text: sql.slice(start, i) });
    } else if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      flush(start);
      out.push({ kind: 'comment', text: sql.slice(start, i) });
    } else if (c === "'") {
      // E'…' takes backslash escapes: the E is the last character of the code before it, and a word of its own.
      const e = codeBefore(start, 1);
      const escapes = (e === 'e' || e === 'E') && !isWordChar(codeBefore(start, 2));
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") {
          i++;
          break;
        } else i++;
      }
      flush(start);
      out.push({ kind: 'string', text: sql.slice(start, i) });
    } else if (c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') {
          i++;
          break;
        } else i++;
      }
      flush(start);
      out.push({ kind: 'ident', text: sql.slice(start, i) });
    } else {
      // A dollar quote ($$ or $tag$) starts only where a word does not go on.
      const tag =
        c === '$' && !isWordChar(codeBefore(start, 1))
          ? /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 65))
          : null;
      if (!tag) {
        if (codeFrom < 0) codeFrom = i;
        i++;
        continue;
      }
      const end = sql.indexOf(tag[0], i + tag[0].length);
      i = end < 0 ? n : end + tag[0].length;
      flush(start);
      out.push({ kind: 'body', text: sql.slice(start, i) });
    }
  }
  flush(n);
  return out;
}

/** The most parameters one statement may number (PostgreSQL's own limit is 65535). */
const MAX_PARAM = 65535;

/**
 * Turns SQLite's `?` and `?NNN` placeholders into PostgreSQL's `$n`, outside literals, identifiers
 * and comments. As in SQLite, a bare `?` takes the number after the largest one used so far. SQL
 * without `?` is returned as it is (so `$1` works too); mixing both forms is refused.
 */
export function translatePlaceholders(sql: string): string {
  const pieces = scan(sql);
  if (!pieces.some((p) => p.kind === 'code' && p.text.includes('?'))) return sql;
  let largest = 0;
  let out = '';
  for (const p of pieces) {
    if (p.kind !== 'code') {
      out += p.text;
      continue;
    }
    if (/(^|[^A-Za-z0-9_$])\$\d/.test(p.text))
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        'The statement mixes "?" and "$1" placeholders; use one form.',
      );
    out += p.text.replace(/\?(\d*)/g, (_, digits: string) => {
      const index = digits ? Number(digits) : largest + 1;
      if (!Number.isInteger(index) || index < 1 || index > MAX_PARAM)
        throw new KylixError(
          'ERR_BINDING_BAD_ARGUMENTS',
          `The placeholder ?${digits} is out of range; number them from ?1 to ?${MAX_PARAM}.`,
        );
      largest = Math.max(largest, index);
      return `$${index}`;
    });
  }
  return out;
}

/** Splits SQL into its statements at top-level semicolons; empty statements are dropped. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  let hasCode = false;
  for (const p of scan(sql)) {
    if (p.kind !== 'code') {
      current += p.text;
      if (p.kind !== 'comment') hasCode = true;
      continue;
    }
    const parts = p.text.split(';');
    parts.forEach((part, k) => {
      if (k > 0) {
        if (hasCode) out.push(current.trim());
        current = '';
        hasCode = false;
      }
      current += part;
      if (part.trim()) hasCode = true;
    });
  }
  if (hasCode) out.push(current.trim());
  return out;
}

/** The words of the code pieces, lowercased, with "(" kept after a word that calls: `datetime(`. */
export function codeWords(sql: string): string[] {
  const words: string[] = [];
  for (const p of scan(sql)) {
    if (p.kind !== 'code') {
      if (p.kind === 'string' || p.kind === 'body' || p.kind === 'ident') words.push(`<${p.kind}>`);
      continue;
    }
    for (const m of p.text.matchAll(/[A-Za-z_][A-Za-z0-9_$]*(\s*\()?|`|[();,]/g))
      words.push(m[1] ? `${m[0].replace(/\s+/g, '').toLowerCase()}` : m[0].toLowerCase());
  }
  return words;
}

/** What a statement does, by its first keyword (for WITH, the statement after the CTEs). */
export function statementVerb(sql: string): string {
  const words = codeWords(sql);
  if (words[0] !== 'with') return words[0]?.replace('(', '') ?? '';
  let depth = 0;
  for (const w of words) {
    if (w === '(' || w.endsWith('(')) depth++;
    else if (w === ')') depth--;
    else if (depth === 0 && /^(select|insert|update|delete|merge|values)$/.test(w)) return w;
  }
  return 'with';
}
