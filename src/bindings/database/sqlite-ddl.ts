/**
 * SQLite's CREATE TABLE and ALTER TABLE … ADD in PostgreSQL, for statements already known to be
 * SQLite (sqlite-translate.ts): column types keep SQLite's meaning (INTEGER is 64-bit, REAL a
 * double, BLOB bytes, DATETIME the text it was given), WITHOUT ROWID and STRICT are dropped, `DEFAULT false` in an integer column is 0, and an `INTEGER PRIMARY KEY`
 * column (AUTOINCREMENT or not) is SQLite's rowid alias: an identity column whose BEFORE INSERT
 * trigger gives it the next id when a NULL is inserted, as drizzle-orm's SQLite dialect does for
 * every row. Table-level FOREIGN KEYs are added after the text's other statements, since SQLite
 * (and drizzle-kit, which orders tables by name) may name a table before creating it.
 */
import { closing, sig, type Tok, type Translated, textOf, word } from './sqlite-tokens.js';

/** SQLite type names whose PostgreSQL namesake means something else. */
const TYPES: Record<string, string> = {
  integer: 'bigint',
  int: 'bigint',
  real: 'double precision',
  blob: 'bytea',
  // SQLite keeps a DATETIME column's value as it was written (an ISO string, CURRENT_TIMESTAMP's
  // text); PostgreSQL has no such type, and timestamptz would hand back another text and Dates.
  datetime: 'text',
};

/**
 * Whether a CREATE TABLE or ALTER TABLE declares a column of a type only SQLite has (DATETIME,
 * not the datetime() function): PostgreSQL can never run it, so it is read as SQLite.
 */
export function hasSqliteType(toks: readonly Tok[]): boolean {
  const verb = word(toks[sig(toks, 0)]);
  if (verb !== 'create' && verb !== 'alter') return false;
  if (tableOptions(toks) !== undefined) return true;
  const before = (k: number) => {
    let j = k - 1;
    while (j >= 0 && (toks[j]!.kind === 'space' || toks[j]!.kind === 'comment')) j--;
    return j;
  };
  return toks.some((t, k) => {
    if (word(t) !== 'datetime' || toks[sig(toks, k + 1)]?.text === '(') return false;
    // In a type's place: after a column's name, which follows "(", "," or ADD [COLUMN].
    const name = before(k);
    const lead = toks[before(name)];
    const named = toks[name]?.kind === 'word' || toks[name]?.kind === 'ident';
    return named && (lead?.text === '(' || lead?.text === ',' || /^(add|column)$/.test(word(lead)));
  });
}

/** Words that begin a column constraint, so a column whose next word is one of them has no type. */
const CONSTRAINT_WORDS =
  /^(constraint|primary|not|null|unique|check|default|collate|references|generated|as)$/;

/**
 * The trigger function behind rowid aliases, one per schema, created with the first such table.
 * A NULL id takes the column's next identity value; an explicit id past it moves the sequence on
 * (SQLite hands out max(rowid) + 1). The column comes as the trigger's argument, never as code.
 */
export const ROWID_FUNCTION = `CREATE OR REPLACE FUNCTION kylix_sqlite_rowid() RETURNS trigger LANGUAGE plpgsql AS $kylix$
DECLARE
  seq text := pg_get_serial_sequence(format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), TG_ARGV[0]);
  given bigint := (to_jsonb(NEW) ->> TG_ARGV[0])::bigint;
BEGIN
  IF given IS NULL THEN
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], nextval(seq)));
  ELSIF given > coalesce(pg_sequence_last_value(seq::regclass), 0) THEN
    PERFORM setval(seq, given);
  END IF;
  RETURN NEW;
END $kylix$`;

/**
 * Where a CREATE TABLE's SQLite table options (`WITHOUT ROWID`, `STRICT`, comma-separated) begin,
 * when the statement ends with them; PostgreSQL has neither (its tables have no rowid, and it
 * always checks types), so they are dropped.
 */
function tableOptions(toks: readonly Tok[]): number | undefined {
  let k = toks.length;
  let start: number | undefined;
  const back = (i: number) => {
    let j = i - 1;
    while (j >= 0 && (toks[j]!.kind === 'space' || toks[j]!.kind === 'comment')) j--;
    return j;
  };
  for (;;) {
    const last = back(k);
    const w = word(toks[last]);
    if (w === 'strict') k = last;
    else if (w === 'rowid' && word(toks[back(last)]) === 'without') k = back(last);
    else break;
    start = k;
    const before = back(k);
    if (toks[before]?.text === ',') k = before;
    else if (toks[before]?.text === ')') return start;
    else return undefined;
  }
  return undefined;
}

/** A SQL string literal of `s`. */
const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The name a column token stands for, as PostgreSQL folds it. */
function columnName(t: Tok): string {
  return t.kind === 'ident' ? t.text.slice(1, -1).replaceAll('""', '"') : t.text.toLowerCase();
}

/** SQLite's text form of CURRENT_TIMESTAMP, CURRENT_DATE and CURRENT_TIME (UTC). */
const NOW_AS_TEXT: Record<string, string> = {
  current_timestamp: "(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))",
  current_date: "(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'))",
  current_time: "(to_char(now() AT TIME ZONE 'UTC', 'HH24:MI:SS'))",
};

/**
 * Translates one column definition (`toks[from..to)`) in place; returns the column's name when it
 * is a rowid alias (INTEGER PRIMARY KEY).
 */
function column(toks: Tok[], from: number, to: number, rowidAllowed: boolean): string | undefined {
  const nameAt = sig(toks, from);
  const typeAt = sig(toks, nameAt + 1);
  const type = typeAt < to && !CONSTRAINT_WORDS.test(word(toks[typeAt])) ? word(toks[typeAt]) : '';
  const typed = type && toks[sig(toks, typeAt + 1)]?.text !== '(';
  const words = toks.slice(typeAt, to).map(word);
  // "primary" and then "key" as the next word; one pass, however many "primary" a column holds.
  let pk = false;
  for (let i = 0, afterPrimary = false; i < words.length && !pk; i++) {
    if (!words[i]) continue;
    pk = afterPrimary && words[i] === 'key';
    afterPrimary = words[i] === 'primary';
  }
  let rowid: string | undefined;
  if (rowidAllowed && type === 'integer' && typed && pk) {
    toks[typeAt] = { kind: 'word', text: 'bigint GENERATED BY DEFAULT AS IDENTITY' };
    rowid = columnName(toks[nameAt]!);
  } else if (typed && Object.hasOwn(TYPES, type)) toks[typeAt] = { kind: 'word', text: TYPES[type]! };
  const textual = !type || /^(text|clob|varchar|char|character|datetime)$/.test(type);
  for (let k = typeAt + 1; k < to; k++) {
    const w = word(toks[k]);
    if (w === 'autoincrement' && rowid) toks[k] = { kind: 'space', text: '' };
    else if (textual && Object.hasOwn(NOW_AS_TEXT, w)) toks[k] = { kind: 'word', text: NOW_AS_TEXT[w]! };
    else if (w === 'default' && type !== 'boolean') {
      const v = sig(toks, k + 1);
      const b = word(toks[v]);
      if (b === 'true' || b === 'false') toks[v] = { kind: 'word', text: b === 'true' ? '1' : '0' };
    }
  }
  return rowid;
}

/** Translates a SQLite statement's CREATE TABLE or ALTER TABLE … ADD; other statements pass as they are. */
export function translateDdl(toks: Tok[]): Translated {
  const text = (a: number, b: number) => textOf(toks, a, b);
  const start = sig(toks, 0);
  const verb = word(toks[start]);
  let k = sig(toks, start + 1);
  if (verb === 'alter' && word(toks[k]) === 'table') {
    const add = toks.findIndex((t, i) => i > k && word(t) === 'add');
    if (add > 0) {
      let def = sig(toks, add + 1);
      if (word(toks[def]) === 'column') def = sig(toks, def + 1);
      if (!/^(constraint|primary|unique|check|foreign)$/.test(word(toks[def])))
        column(toks, def, toks.length, false);
    }
    return { statements: [text(0, toks.length)], deferred: [] };
  }
  while (/^(temp|temporary)$/.test(word(toks[k]))) k = sig(toks, k + 1);
  const open = toks.findIndex((t, i) => i > k && t.kind === 'punct' && t.text === '(');
  if (verb !== 'create' || word(toks[k]) !== 'table' || open < 0)
    return { statements: [text(0, toks.length)], deferred: [] };
  let nameAt = sig(toks, k + 1);
  if (word(toks[nameAt]) === 'if') nameAt = sig(toks, sig(toks, sig(toks, nameAt + 1) + 1) + 1);
  // A table's name is words, quoted identifiers and dots; anything else is not translated.
  if (toks.slice(nameAt, open).some((t) => !/^(word|ident|space)$/.test(t.kind) && t.text !== '.'))
    return { statements: [text(0, toks.length)], deferred: [] };
  const table = text(nameAt, open).trim();
  const end = closing(toks, open);
  const options = tableOptions(toks);
  if (options !== undefined && options > end) toks.splice(end + 1, toks.length, { kind: 'space', text: '' });
  // 1. The definitions between the parentheses, split at top-level commas.
  const parts: [number, number][] = [];
  let from = open + 1;
  let depth = 0;
  for (let i = open + 1; i < end; i++) {
    const t = toks[i]!;
    if (t.kind !== 'punct') continue;
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (t.text === ',' && depth === 0) {
      parts.push([from, i]);
      from = i + 1;
    }
  }
  parts.push([from, end]);
  // 2. Each one translated; foreign keys kept for later.
  const kept: string[] = [];
  const deferred: string[] = [];
  const rowids: string[] = [];
  for (const [a, b] of parts) {
    const first = word(toks[sig(toks, a)]);
    const named = first === 'constraint' ? word(toks[sig(toks, sig(toks, sig(toks, a) + 1) + 1)]) : first;
    if (named === 'foreign') {
      deferred.push(`ALTER TABLE ${table} ADD ${text(a, b).trim()}`);
      continue;
    }
    if (!/^(constraint|primary|unique|check)$/.test(first)) {
      const rowid = column(toks, a, b, true);
      if (rowid !== undefined) rowids.push(rowid);
    }
    kept.push(text(a, b));
  }
  // 3. The statement again, and a rowid alias's trigger (SQLite has one rowid per table).
  const create = `${text(0, open + 1)}${kept.join(',')}${text(end, toks.length)}`;
  const statements = [create];
  if (rowids.length === 1)
    statements.push(
      ROWID_FUNCTION,
      `CREATE OR REPLACE TRIGGER kylix_rowid BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION kylix_sqlite_rowid(${literal(rowids[0]!)})`,
    );
  return { statements, deferred };
}
