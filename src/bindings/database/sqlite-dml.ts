/**
 * SQLite's `INSERT OR IGNORE` (workers-qb's ConflictTypes.IGNORE, and many D1 apps' seeds) is
 * PostgreSQL's `INSERT … ON CONFLICT DO NOTHING`; SQLite's `DELETE … LIMIT` and `UPDATE … LIMIT` (D1 takes them; chanfana's D1DeleteEndpoint sends
 * `DELETE FROM t WHERE id = ?1 RETURNING * LIMIT 1`) in PostgreSQL, which has no LIMIT there: the
 * rows are picked by a subquery on `ctid`, locked FOR UPDATE so a row changed meanwhile is picked
 * in its new version, as SQLite's single writer would see it.
 */
import { sig, type Tok, textOf, word } from './sqlite-tokens.js';

/** The top-level index of the first of `words` at or after `from` (or -1). */
function topLevel(toks: readonly Tok[], from: number, words: readonly string[]): number {
  let depth = 0;
  for (let k = from; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'punct' && t.text === '(') depth++;
    else if (t.kind === 'punct' && t.text === ')') depth--;
    else if (depth === 0 && words.includes(word(t))) return k;
  }
  return -1;
}

/**
 * `INSERT OR IGNORE INTO …` as `INSERT INTO … ON CONFLICT DO NOTHING` (before any RETURNING);
 * undefined for another statement, or one that already has an ON CONFLICT clause.
 */
export function translateInsertOrIgnore(toks: readonly Tok[]): string | undefined {
  const start = sig(toks, 0);
  const or = sig(toks, start + 1);
  const ignore = sig(toks, or + 1);
  if (word(toks[start]) !== 'insert' || word(toks[or]) !== 'or' || word(toks[ignore]) !== 'ignore')
    return undefined;
  if (topLevel(toks, ignore + 1, ['conflict']) >= 0) return undefined;
  const text = (a: number, b: number) => textOf(toks, a, b);
  const returning = topLevel(toks, ignore + 1, ['returning']);
  const body = text(sig(toks, ignore + 1), returning < 0 ? toks.length : returning).trimEnd();
  const tail = returning < 0 ? '' : ` ${text(returning, toks.length).trimEnd()}`;
  return `${text(0, or)}${body} ON CONFLICT DO NOTHING${tail}`;
}

/** The clauses of a DELETE or UPDATE that may follow the table, in SQLite's order. */
const CLAUSES = ['where', 'returning', 'order', 'limit'] as const;

/** Top-level positions of each clause keyword after `from` (ORDER only when BY follows). */
function clauses(toks: readonly Tok[], from: number): Map<string, number> {
  const at = new Map<string, number>();
  let depth = 0;
  for (let k = from; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'punct' && t.text === '(') depth++;
    else if (t.kind === 'punct' && t.text === ')') depth--;
    const w = word(t);
    if (depth !== 0 || at.has(w) || !(CLAUSES as readonly string[]).includes(w)) continue;
    if (w === 'order' && word(toks[sig(toks, k + 1)]) !== 'by') continue;
    at.set(w, k);
  }
  return at;
}

/**
 * The statement without its DELETE/UPDATE LIMIT, when it has one this can place; undefined for
 * any other statement (left to the SQLite hints). A RETURNING clause holding a placeholder stays
 * as it is: moving it would change which value a bare `?` takes.
 */
export function translateLimitedDml(toks: readonly Tok[]): string | undefined {
  const text = (a: number, b: number) => textOf(toks, a, b);
  const start = sig(toks, 0);
  const verb = word(toks[start]);
  if (verb !== 'delete' && verb !== 'update') return undefined;
  // 1. The table: after DELETE FROM, or between UPDATE and SET; a plain (qualified) name only.
  let nameAt = sig(toks, start + 1);
  if (verb === 'delete') {
    if (word(toks[nameAt]) !== 'from') return undefined;
    nameAt = sig(toks, nameAt + 1);
  }
  const at = clauses(toks, nameAt);
  const limit = at.get('limit');
  if (limit === undefined) return undefined;
  const set = verb === 'update' ? toks.findIndex((t, i) => i > nameAt && word(t) === 'set') : -1;
  const nameEnd = verb === 'update' ? set : Math.min(...CLAUSES.map((c) => at.get(c) ?? toks.length));
  if (nameEnd < 0) return undefined;
  const name = toks.slice(nameAt, nameEnd);
  const pieces = name.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  if (
    pieces.length === 0 ||
    pieces.some((t, i) => (i % 2 === 1 ? t.text !== '.' : t.kind !== 'word' && t.kind !== 'ident'))
  )
    return undefined;
  // 2. Each clause's text, up to the next one; SQLite puts them in CLAUSES' order.
  const order = CLAUSES.filter((c) => at.has(c)).map((c) => at.get(c)!);
  if (order.some((p, i) => i > 0 && p < order[i - 1]!)) return undefined;
  if (verb === 'update' && toks.slice(set, order[0]).some((t) => word(t) === 'from')) return undefined;
  const clause = (c: (typeof CLAUSES)[number]) => {
    const from = at.get(c);
    if (from === undefined) return '';
    const next = order.find((p) => p > from) ?? toks.length;
    return text(from, next).trimEnd();
  };
  const returning = clause('returning');
  if (returning && toks.slice(at.get('returning'), limit).some((t) => t.text === '?')) return undefined;
  const table = text(nameAt, nameEnd).trim();
  const head = verb === 'update' ? text(0, order[0]!).trimEnd() : `${text(0, nameAt)}${table}`;
  const pick = [`SELECT ctid FROM ${table}`, clause('where'), clause('order'), clause('limit'), 'FOR UPDATE'];
  const tail = returning ? ` ${returning}` : '';
  return `${head} WHERE ctid IN (${pick.filter((s) => s).join(' ')})${tail}`;
}
