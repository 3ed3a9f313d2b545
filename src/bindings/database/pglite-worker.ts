/**
 * The worker thread that owns the one PGlite instance of the embedded Database provider. PGlite runs
 * on the thread that calls it, so it lives here and a slow query never stalls the gateway. It has
 * one connection: every call takes the lock in turn, and an interactive transaction holds the lock
 * from begin to commit, rollback or timeout, while other calls queue behind it.
 */
import { randomUUID } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { PGlite, Results } from '@electric-sql/pglite';
import { KylixError } from '../../errors.js';
import {
  orderMigrations,
  quoteIdent,
  sqlError,
  TEXT_TYPES,
  toResult,
  toWire,
  transactionClosed,
} from './common.js';
import type { SqlResult, Statement } from './interface.js';

/** A call from the provider. `schema` is the resource's schema. */
export type WorkerRequest = { id: number } & (
  | { op: 'ensure' | 'purge'; schema: string }
  | { op: 'query'; schema: string; statement: Statement }
  | { op: 'batch'; schema: string; statements: Statement[] }
  | { op: 'begin'; schema: string; timeoutMs: number }
  | { op: 'txQuery'; txId: string; statement: Statement }
  | { op: 'commit' | 'rollback'; txId: string }
  | { op: 'migrate'; schema: string; migrations: { name: string; sql: string }[] }
  | { op: 'health' | 'close' }
);

interface Tx {
  schema: string;
  release: () => void;
  timer: NodeJS.Timeout;
  /** Statements of one transaction run one after another. */
  chain: Promise<unknown>;
}

/** A FIFO lock over the single connection. */
class Lock {
  private tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

const { dataDir } = workerData as { dataDir: string };
const { PGlite: PGliteClass } = await import('@electric-sql/pglite');
const db: PGlite = await PGliteClass.create(dataDir, {
  parsers: { [TEXT_TYPES.INT8]: (x: string) => x, [TEXT_TYPES.DATE]: (x: string) => x },
});
const lock = new Lock();
const schemas = new Set(
  (
    await db.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kylix\\_%'")
  ).rows.map((r) => r.nspname),
);
const txs = new Map<string, Tx>();

/** Runs fn holding the connection. */
async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const release = await lock.acquire();
  try {
    return await fn();
  } finally {
    release();
  }
}

function requireSchema(schema: string): void {
  if (!schemas.has(schema)) throw new KylixError('ERR_NOT_FOUND', `schema ${schema}`);
}

async function run(statement: Statement): Promise<SqlResult> {
  try {
    return toResult(await db.query(statement.sql, statement.params ?? []));
  } catch (err) {
    throw sqlError(err);
  }
}

/** Session settings a tenant changed must not leak into the next resource's statements. */
async function enterSchema(schema: string, local: boolean): Promise<void> {
  await db.exec(
    local
      ? `SET LOCAL search_path TO ${quoteIdent(schema)}`
      : `RESET ALL; SET search_path TO ${quoteIdent(schema)}`,
  );
}

async function inTransaction<T>(schema: string, fn: () => Promise<T>): Promise<T> {
  await db.exec('BEGIN');
  try {
    await enterSchema(schema, true);
    const out = await fn();
    await db.exec('COMMIT');
    return out;
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function endTx(txId: string, how: 'COMMIT' | 'ROLLBACK'): Promise<void> {
  const tx = txs.get(txId);
  if (!tx) throw transactionClosed(txId);
  txs.delete(txId);
  clearTimeout(tx.timer);
  try {
    await tx.chain.catch(() => {});
    await db.exec(how);
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => {});
    throw sqlError(err);
  } finally {
    tx.release();
  }
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'ensure':
      return exclusive(async () => {
        await db.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(req.schema)}`);
        schemas.add(req.schema);
      });
    case 'purge':
      return exclusive(async () => {
        await db.exec(`DROP SCHEMA IF EXISTS ${quoteIdent(req.schema)} CASCADE`);
        schemas.delete(req.schema);
      });
    case 'query':
      return exclusive(async () => {
        requireSchema(req.schema);
        await enterSchema(req.schema, false);
        return run(req.statement);
      });
    case 'batch':
      return exclusive(async () => {
        requireSchema(req.schema);
        return inTransaction(req.schema, async () => {
          const out: SqlResult[] = [];
          for (const s of req.statements) out.push(await run(s));
          return out;
        });
      });
    case 'begin': {
      requireSchema(req.schema);
      const release = await lock.acquire();
      try {
        await db.exec('RESET ALL; BEGIN');
        await enterSchema(req.schema, true);
      } catch (err) {
        release();
        throw sqlError(err);
      }
      const txId = randomUUID();
      const timer = setTimeout(() => {
        endTx(txId, 'ROLLBACK').catch(() => {});
        timedOut.add(txId);
        if (timedOut.size > 1000) timedOut.delete(timedOut.values().next().value!);
      }, req.timeoutMs);
      txs.set(txId, { schema: req.schema, release, timer, chain: Promise.resolve() });
      return txId;
    }
    case 'txQuery': {
      const tx = txs.get(req.txId);
      if (!tx) throw closedError(req.txId);
      const result = tx.chain.then(() => run(req.statement));
      tx.chain = result.catch(() => {});
      try {
        return await result;
      } catch (err) {
        // An error aborts a PostgreSQL transaction: roll it back now rather than leave it holding the lock.
        await endTx(req.txId, 'ROLLBACK').catch(() => {});
        throw err;
      }
    }
    case 'commit':
    case 'rollback':
      if (!txs.has(req.txId)) throw closedError(req.txId);
      return endTx(req.txId, req.op === 'commit' ? 'COMMIT' : 'ROLLBACK');
    case 'migrate':
      return exclusive(async () => {
        requireSchema(req.schema);
        const table = `${quoteIdent(req.schema)}.kylix_migrations`;
        await db.exec(
          `CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const done = new Set(
          (await db.query<{ name: string }>(`SELECT name FROM ${table}`)).rows.map((r) => r.name),
        );
        const applied: string[] = [];
        for (const m of orderMigrations(req.migrations)) {
          if (done.has(m.name)) continue;
          await inTransaction(req.schema, async () => {
            try {
              await db.exec(m.sql);
            } catch (err) {
              const e = sqlError(err);
              if (e instanceof Error) e.message = `Migration "${m.name}" failed: ${e.message}`;
              throw e;
            }
            await db.query(`INSERT INTO ${table} (name) VALUES ($1)`, [m.name]);
          });
          applied.push(m.name);
        }
        return applied;
      });
    case 'health':
      return exclusive(async () => {
        const r: Results<{ v: string }> = await db.query('SELECT version() AS v');
        return r.rows[0]?.v ?? 'unknown';
      });
    case 'close':
      return exclusive(() => db.close());
  }
}

/** Transactions that ended by timeout, so a late call says why. */
const timedOut = new Set<string>();
function closedError(txId: string): KylixError {
  if (timedOut.has(txId)) return transactionClosed(txId, 'timed out and was rolled back');
  return transactionClosed(txId);
}

parentPort!.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (value) => parentPort!.postMessage({ id: req.id, ok: true, value }),
    (err: unknown) => parentPort!.postMessage({ id: req.id, ok: false, error: toWire(err) }),
  );
});
parentPort!.postMessage({ ready: true });
