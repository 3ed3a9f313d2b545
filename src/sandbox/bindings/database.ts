/**
 * env.X for a Database binding: parameterized queries, atomic batches and transactions (Kylix's
 * own API), and Cloudflare D1's: prepare(sql).bind(...).first()/all()/run()/raw(), batch([...]),
 * exec(sql), withSession(). Both speak the PostgreSQL dialect; D1's `?`/`?NNN` placeholders are
 * translated by the supervisor (src/bindings/database/d1.ts), which also shapes D1's results.
 */
import { caller, type Rpc } from './common.js';

/** The operations this object calls: the same as the Database kind's (a unit test checks it). */
export const DATABASE_OPS = [
  'query',
  'batch',
  'begin',
  'queryInTransaction',
  'commit',
  'rollback',
  'd1Query',
  'd1Batch',
  'd1Exec',
] as const;

/** A D1 result as the supervisor sends it. */
interface D1Wire {
  results: Record<string, unknown>[];
  columns: string[];
  success: true;
  meta: Record<string, unknown>;
}

/** D1's error for what it refuses before running (its messages start with the code). */
function d1Error(code: string, message: string): Error {
  return new Error(`${code}: ${message}`);
}

/**
 * A bound value as D1 accepts it: null, number, string, bytes; a boolean as 1 or 0 (SQLite has no
 * boolean, and D1 binds one so: an INTEGER column takes it); bigint as its digits.
 */
function d1Param(value: unknown, index: number): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw d1Error(
    'D1_TYPE_ERROR',
    `Type '${value === undefined ? 'undefined' : typeof value}' not supported for value at position ${index + 1}.`,
  );
}

/** The D1 part of the binding object. */
function d1(call: ReturnType<typeof caller<(typeof DATABASE_OPS)[number]>>) {
  /** Statements made by prepare(), so batch() can tell them from Kylix's `{ sql, params }`. */
  const prepared = new WeakMap<object, { sql: string; params: unknown[] }>();
  const shape = (w: D1Wire) => ({ results: w.results, success: w.success, meta: w.meta });

  function statement(sql: string, params: unknown[]) {
    const wire = { sql, params };
    const run = async () => (await call('d1Query', [wire])) as D1Wire;
    const s = Object.freeze({
      bind: (...values: unknown[]) => statement(sql, values.map(d1Param)),
      async first(column?: string) {
        const w = await run();
        const row = w.results[0];
        if (column === undefined) return row ?? null;
        if (!w.columns.includes(column))
          throw d1Error('D1_COLUMN_NOTFOUND', `Column not found: ${String(column)}`);
        return row ? row[column] : null;
      },
      all: async () => shape(await run()),
      run: async () => shape(await run()),
      async raw(options: { columnNames?: boolean } = {}) {
        const w = await run();
        const rows = w.results.map((r) => w.columns.map((c) => r[c]));
        return options.columnNames ? [w.columns, ...rows] : rows;
      },
    });
    prepared.set(s, wire);
    return s;
  }

  const prepare = (sql: string) => {
    if (typeof sql !== 'string' || sql.trim() === '') throw d1Error('D1_ERROR', 'The query is empty.');
    return statement(sql, []);
  };
  return {
    prepare,
    /** True when every element is a prepared statement (D1's batch), not `{ sql, params }`. */
    isD1Batch: (list: unknown[]) =>
      list.length > 0 && list.every((s) => typeof s === 'object' && s !== null && prepared.has(s)),
    async batch(list: object[]) {
      const wires = list.map((s) => prepared.get(s)!);
      return ((await call('d1Batch', [wires])) as D1Wire[]).map(shape);
    },
    async exec(sql: string) {
      if (typeof sql !== 'string' || sql.trim() === '') throw d1Error('D1_EXEC_ERROR', 'The query is empty.');
      return (await call('d1Exec', [sql])) as { count: number; duration: number };
    },
  };
}

/** See the file comment. */
export function databaseBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof DATABASE_OPS)[number]>(rpc, name);
  const query = async (sql: string, params: unknown[] = []) => call('query', [{ sql, params }]);
  const d = d1(call);
  async function batch(statements: unknown[]) {
    if (!Array.isArray(statements)) throw new TypeError('batch() takes an array of statements.');
    if (d.isD1Batch(statements)) return d.batch(statements as object[]);
    return call('batch', [
      (statements as { sql: string; params?: unknown[] }[]).map((s) => ({
        sql: s.sql,
        params: s.params ?? [],
      })),
    ]);
  }
  return Object.freeze({
    query,
    batch,
    prepare: d.prepare,
    exec: d.exec,
    /** D1's read-replication sessions: one primary here, so a session is the database itself. */
    withSession: (_constraintOrBookmark?: string) =>
      Object.freeze({ prepare: d.prepare, batch, getBookmark: () => null }),
    /** Runs `fn` in a transaction: committed when it returns, rolled back when it throws. */
    async transaction<T>(
      fn: (tx: { query: typeof query }) => Promise<T>,
      options: { timeoutMs?: number } = {},
    ): Promise<T> {
      const tx = (await call('begin', [options.timeoutMs ?? 10_000])) as string;
      let result: T;
      try {
        result = await fn({
          query: (sql, params = []) => call('queryInTransaction', [tx, { sql, params }]),
        });
      } catch (err) {
        await call('rollback', [tx]).catch(() => undefined);
        throw err;
      }
      await call('commit', [tx]);
      return result;
    },
  });
}
