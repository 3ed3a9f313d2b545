/**
 * `kylix sql DB ["STATEMENT"]`: one statement, or a session read from the terminal (a prompt) or
 * from piped input (`kylix sql shop < seed.sql`), statements ended by ";", with psql's `\q`, `\dt`
 * and `\d TABLE`.
 */
import { createInterface } from 'node:readline/promises';
import { KylixError } from '../../errors.js';
import type { ApiClient } from '../client.js';
import { table } from '../output.js';

/** psql's \dt: the tables (and views) outside the system schemas. */
const LIST_TABLES = `SELECT table_schema AS "schema", table_name AS "name", lower(table_type) AS "type"
  FROM information_schema.tables
  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  ORDER BY 1, 2`;
/** psql's \d TABLE: its columns. */
const DESCRIBE_TABLE = `SELECT column_name AS "column", data_type AS "type",
    CASE is_nullable WHEN 'YES' THEN '' ELSE 'not null' END AS "nullable", coalesce(column_default, '') AS "default"
  FROM information_schema.columns
  WHERE table_name = $1 AND table_schema NOT IN ('pg_catalog', 'information_schema')
  ORDER BY ordinal_position`;

async function runSql(client: ApiClient, name: string, sql: string, params: unknown[] = []): Promise<string> {
  const { data } = await client.json<{
    rows: Record<string, unknown>[];
    rowCount: number;
    fields: { name: string }[];
  }>('POST', `${client.path('databases', name)}/query`, { sql, params });
  if (data.fields.length === 0) return `OK, ${data.rowCount} row${data.rowCount === 1 ? '' : 's'}`;
  const cell = (v: unknown) => (v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return `${table(
    data.fields.map((f) => f.name),
    data.rows.map((r) => data.fields.map((f) => cell(r[f.name]))),
  )}\n(${data.rowCount} row${data.rowCount === 1 ? '' : 's'})`;
}

/**
 * Splits SQL text into complete statements and what is left over: a ";" ends a statement unless it
 * is inside quotes, a dollar-quoted body or a comment.
 */
export function splitStatements(text: string): { statements: string[]; rest: string } {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      i = end === -1 ? text.length : end + 1;
    } else if (ch === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end + 1;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (ch === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i))?.[0];
      if (tag) {
        const end = text.indexOf(tag, i + tag.length);
        i = end === -1 ? text.length : end + tag.length;
      } else i++;
    } else if (ch === ';') {
      const statement = text.slice(start, i).trim();
      if (statement) statements.push(statement);
      start = ++i;
    } else i++;
  }
  return { statements, rest: text.slice(start) };
}

/** What a backslash command does: its output, or 'quit'. */
async function meta(client: ApiClient, name: string, line: string): Promise<string | 'quit'> {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === '\\q') return 'quit';
  if (cmd === '\\dt') return runSql(client, name, LIST_TABLES);
  if (cmd === '\\d' && arg) {
    const out = await runSql(client, name, DESCRIBE_TABLE, [arg.replace(/^.*\./, '').replace(/"/g, '')]);
    return out.endsWith('(0 rows)') ? `Did not find a table named "${arg}".` : `Table "${arg}"\n${out}`;
  }
  if (cmd === '\\d') return runSql(client, name, LIST_TABLES);
  return `Unknown command ${cmd}: use \\q (quit), \\dt (tables) or \\d TABLE (its columns).`;
}

/** `kylix sql NAME "QUERY"`; without a query, a session (see the file comment). Rejects when a piped statement failed. */
export async function sqlCommand(client: ApiClient, name: string, sql: string | undefined): Promise<string> {
  if (sql)
    return sql.trim().startsWith('\\') ? String(await meta(client, name, sql)) : runSql(client, name, sql);
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    ...(interactive ? { output: process.stdout, prompt: `${name}=> ` } : {}),
  });
  let failed = false;
  const run = async (work: () => Promise<string | 'quit'>): Promise<boolean> => {
    try {
      const out = await work();
      if (out === 'quit') return false;
      console.log(out);
    } catch (err) {
      if (!(err instanceof KylixError) || err.code === 'ERR_API_UNREACHABLE') throw err;
      console.error(`${err.code}: ${err.message}`);
      failed = true;
      // Piped input stops at the first error, as psql -v ON_ERROR_STOP=1 does.
      if (!interactive) return false;
    }
    return true;
  };
  if (interactive) rl.prompt();
  let buffer = '';
  let going = true;
  for await (const line of rl) {
    if (buffer.trim() === '' && line.trim().startsWith('\\')) {
      going = await run(() => meta(client, name, line));
    } else {
      buffer += `${line}\n`;
      const { statements, rest } = splitStatements(buffer);
      buffer = rest;
      for (const s of statements) if (going) going = await run(() => runSql(client, name, s));
    }
    if (!going) break;
    if (interactive) rl.prompt();
  }
  rl.close();
  if (going && buffer.trim()) await run(() => runSql(client, name, buffer));
  if (failed && !interactive)
    throw new KylixError('ERR_SQL', 'A statement failed; the ones after it were not run.');
  return '';
}
