/**
 * The worker thread that owns ONE Database's PGlite (its own data folder, its own WebAssembly
 * engine), so nothing one Database runs can name, lock or wedge another, and the provider can
 * terminate this thread when a statement runs past its time. PGlite has one connection: every call
 * takes the lock in turn, an interactive transaction holds it from begin to its end, and after each
 * call the session is reset so no state (role, settings, temp tables, prepared statements, cursors,
 * advisory locks, an open transaction) reaches the next one.
 *
 * In `template` mode the worker instead runs initdb once in memory and writes the result as a tar
 * file, from which every new Database is unpacked (~1 s instead of ~8 s of initdb).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { PGlite, Results } from '@electric-sql/pglite';
import { KylixError } from '../../errors.js';
import {
  lastvalOf,
  orderMigrations,
  sqlError,
  TEXT_TYPES,
  toResult,
  toWire,
  transactionClosed,
} from './common.js';
import type { SqlResult, Statement } from './interface.js';
import { checkEmbeddedSql } from './sql-guard.js';
import { ROWID_FUNCTION } from './sqlite-ddl.js';

/** A call from the provider. */
export type WorkerRequest = { id: number } & (
  | { op: 'query'; statement: Statement }
  | { op: 'batch'; statements: Statement[] }
  | { op: 'begin'; timeoutMs: number }
  | { op: 'txQuery'; txId: string; statement: Statement }
  | { op: 'commit' | 'rollback'; txId: string }
  | { op: 'migrate'; migrations: { name: string; sql: string }[] }
  | { op: 'health' | 'close' }
);

/** What the worker is started with. */
export type WorkerData =
  | { mode: 'serve'; dir: string; template: string; readyMarker: string }
  | { mode: 'template'; template: string };

interface Tx {
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

/** Everything a call may have changed in the session, put back (DISCARD ALL itself breaks PGlite). */
const RESET_SESSION = [
  'RESET SESSION AUTHORIZATION',
  'RESET ROLE',
  'RESET ALL',
  'DEALLOCATE ALL',
  'CLOSE ALL',
  'UNLISTEN *',
  'SELECT pg_advisory_unlock_all()',
  'DISCARD PLANS',
  'DISCARD TEMP',
  'DISCARD SEQUENCES',
].join('; ');

const data = workerData as WorkerData;
const { PGlite: PGliteClass } = await import('@electric-sql/pglite');
const parsers = { [TEXT_TYPES.INT8]: (x: string) => x, [TEXT_TYPES.DATE]: (x: string) => x };

if (data.mode === 'template') {
  const fresh = await PGliteClass.create({ parsers });
  const tar = await fresh.dumpDataDir('none');
  await fresh.close();
  const tmp = `${data.template}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(tmp, new Uint8Array(await tar.arrayBuffer()), { mode: 0o600 });
  renameSync(tmp, data.template);
  parentPort!.postMessage({ ready: true });
  process.exit(0);
}
const serve = data as Extract<WorkerData, { mode: 'serve' }>;

const fresh = !existsSync(serve.readyMarker);
const db: PGlite = await PGliteClass.create(serve.dir, {
  parsers,
  ...(fresh ? { loadDataDir: new Blob([readFileSync(serve.template)]) } : {}),
});
harden(db);
if (fresh) writeFileSync(serve.readyMarker, '');
const lock = new Lock();
const txs = new Map<string, Tx>();
/** Transactions that ended by timeout, so a late call says why. */
const timedOut = new Set<string>();

/**
 * Closes the doors PGlite's superuser would otherwise have out of this engine: the dynamic loader
 * (LOAD, C functions) may read only PGlite's own libraries, whose folders become read-only; any
 * other library a statement names — a file the tenant wrote, or a host path — is refused.
 */
function harden(pg: PGlite): void {
  type Fs = {
    readFile(path: string, opts?: unknown): unknown;
    lookupPath(path: string, opts?: unknown): { path: string };
    stat(path: string): { mode: number };
    isDir(mode: number): boolean;
    readdir(path: string): string[];
    chmod(path: string, mode: number): void;
    ErrnoError: new (errno: number) => Error;
  };
  const mod = (pg as unknown as { Module: { FS: Fs; locateFile?: unknown } }).Module;
  const fs = mod.FS;
  const readOnly = (path: string) => {
    const st = fs.stat(path);
    if (fs.isDir(st.mode))
      for (const name of fs.readdir(path)) if (name !== '.' && name !== '..') readOnly(`${path}/${name}`);
    fs.chmod(path, st.mode & ~0o222);
  };
  for (const dir of ['/pglite/lib', '/pglite/bin', '/pglite/share']) {
    try {
      readOnly(dir);
    } catch {
      // Not in this PGlite build: nothing to protect there.
    }
  }
  // A library not found in PGlite's file system would be read from the host's: never.
  mod.locateFile = (path: string) => {
    throw new Error(`loading ${path} is not allowed`);
  };
  const readFile = fs.readFile.bind(fs);
  fs.readFile = (path: string, opts?: unknown) => {
    const out = readFile(path, opts);
    const wasm =
      out instanceof Uint8Array && out[0] === 0 && out[1] === 0x61 && out[2] === 0x73 && out[3] === 0x6d;
    if (wasm && !fs.lookupPath(path, { follow: true }).path.startsWith('/pglite/lib/'))
      throw new fs.ErrnoError(13);
    return out;
  };
}

/** Runs call `id`'s fn holding the connection, then resets the session. */
async function exclusive<T>(id: number, fn: () => Promise<T>): Promise<T> {
  const release = await lock.acquire();
  started(id);
  try {
    return await fn();
  } finally {
    await resetSession();
    release();
  }
}

/** Tells the provider call `id` is now running (not queued), so its deadline starts now. */
function started(id: number): void {
  parentPort!.postMessage({ id, started: true });
}

async function resetSession(): Promise<void> {
  try {
    if (db.isInTransaction()) await db.exec('ROLLBACK');
    await db.exec(RESET_SESSION);
  } catch {
    // A session that cannot be reset must not serve another call: let the provider restart it.
    process.exit(3);
  }
}

/** The rowid trigger function's body, as the SQLite translation creates it: the one function a database may hold and still make room in the reserve. */
const ROWID_BODY = ROWID_FUNCTION.slice(
  ROWID_FUNCTION.indexOf('$kylix$') + 7,
  ROWID_FUNCTION.lastIndexOf('$kylix$'),
);

/**
 * Whether the database holds code that a statement making room could run: its own functions (a
 * trigger's, an aggregate), operators and casts (either may call a built-in that writes), rules,
 * and the defaults and CHECKs a foreign key's ON DELETE SET NULL / SET DEFAULT evaluates.
 */
const HOLDS_CODE = `SELECT EXISTS (
  SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND NOT (p.proname = 'kylix_sqlite_rowid' AND p.prosrc = $1)
) OR EXISTS (
  SELECT 1 FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
) OR EXISTS (SELECT 1 FROM pg_cast WHERE oid >= 16384) OR EXISTS (
  SELECT 1 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE r.ev_type <> '1' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
) OR EXISTS (
  SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confdeltype IN ('n', 'd') AND (
    EXISTS (SELECT 1 FROM pg_attrdef d WHERE d.adrelid = f.conrelid)
    OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'c' AND (c.conrelid = f.conrelid OR c.contypid <> 0))
  )
) AS code`;

/**
 * Runs `fn` as `statement.reserve` says (disk-writes.ts): a read in a read-only transaction (a
 * savepoint inside the caller's transaction, undone after, so the engine refuses every write the
 * read attempts), a statement making room only where no code of the tenant's could write for it.
 */
async function inReserve<T>(statement: Statement, fn: () => Promise<T>): Promise<T> {
  if (statement.reserve === 'room') {
    const r = await db.query<{ code: boolean }>(HOLDS_CODE, [ROWID_BODY]);
    if (r.rows[0]?.code)
      throw new KylixError(
        'ERR_BACKEND_UNAVAILABLE',
        "The embedded database is refusing writes: the node's data disk is in the reserve kept for the platform (KYLIX_DISK_RESERVE_MIB), and this database's own functions or rules could write for a DELETE, DROP or TRUNCATE. Give the node more disk, or free it elsewhere.",
      );
    return fn();
  }
  if (statement.reserve !== 'read') return fn();
  const nested = db.isInTransaction();
  await db.exec(nested ? 'SAVEPOINT kylix_reserve; SET LOCAL transaction_read_only = on' : 'BEGIN READ ONLY');
  try {
    return await fn();
  } finally {
    await db.exec(
      nested ? 'ROLLBACK TO SAVEPOINT kylix_reserve; RELEASE SAVEPOINT kylix_reserve' : 'ROLLBACK',
    );
  }
}

async function run(statement: Statement): Promise<SqlResult> {
  checkEmbeddedSql(statement.sql);
  try {
    const result = toResult(
      await inReserve(statement, () => db.query(statement.sql, statement.params ?? [])),
    );
    if (statement.lastRowId) result.lastRowId = await lastvalOf(db.isInTransaction(), (sql) => db.query(sql));
    return result;
  } catch (err) {
    throw sqlError(err);
  }
}

async function inTransaction<T>(fn: () => Promise<T>): Promise<T> {
  await db.exec('BEGIN');
  try {
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
  if (!tx) throw closedError(txId);
  txs.delete(txId);
  clearTimeout(tx.timer);
  try {
    await tx.chain.catch(() => {});
    // A tenant's own COMMIT or ROLLBACK inside the transaction already ended it.
    if (db.isInTransaction()) await db.exec(how);
    else if (how === 'COMMIT') throw transactionClosed(txId, 'was ended by a statement inside it');
  } catch (err) {
    throw sqlError(err);
  } finally {
    await resetSession();
    tx.release();
  }
}

function closedError(txId: string): KylixError {
  if (timedOut.has(txId)) return transactionClosed(txId, 'timed out and was rolled back');
  return transactionClosed(txId);
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'query':
      return exclusive(req.id, () => run(req.statement));
    case 'batch':
      return exclusive(req.id, () =>
        inTransaction(async () => {
          const out: SqlResult[] = [];
          for (const s of req.statements) out.push(await run(s));
          return out;
        }),
      );
    case 'begin': {
      const release = await lock.acquire();
      started(req.id);
      try {
        await db.exec('BEGIN');
      } catch (err) {
        await resetSession();
        release();
        throw sqlError(err);
      }
      const txId = randomUUID();
      const timer = setTimeout(() => {
        timedOut.add(txId);
        if (timedOut.size > 1000) timedOut.delete(timedOut.values().next().value!);
        endTx(txId, 'ROLLBACK')
          .catch(() => {})
          .finally(() => parentPort!.postMessage({ txTimedOut: txId }));
      }, req.timeoutMs);
      txs.set(txId, { release, timer, chain: Promise.resolve() });
      return txId;
    }
    case 'txQuery': {
      const tx = txs.get(req.txId);
      if (!tx) throw closedError(req.txId);
      const id = req.id;
      const result = tx.chain.then(() => {
        started(id);
        return run(req.statement);
      });
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
      started(req.id);
      return endTx(req.txId, req.op === 'commit' ? 'COMMIT' : 'ROLLBACK');
    case 'migrate':
      return exclusive(req.id, async () => {
        await db.exec(
          'CREATE TABLE IF NOT EXISTS kylix_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        const done = new Set(
          (await db.query<{ name: string }>('SELECT name FROM kylix_migrations')).rows.map((r) => r.name),
        );
        const applied: string[] = [];
        for (const m of orderMigrations(req.migrations)) {
          if (done.has(m.name)) continue;
          await inTransaction(async () => {
            try {
              checkEmbeddedSql(m.sql);
              await db.exec(m.sql);
            } catch (err) {
              const e = sqlError(err);
              if (e instanceof Error) e.message = `Migration "${m.name}" failed: ${e.message}`;
              throw e;
            }
            await db.query('INSERT INTO kylix_migrations (name) VALUES ($1)', [m.name]);
          });
          applied.push(m.name);
        }
        return applied;
      });
    case 'health':
      return exclusive(req.id, async () => {
        const r: Results<{ v: string }> = await db.query('SELECT version() AS v');
        return r.rows[0]?.v ?? 'unknown';
      });
    case 'close': {
      await lock.acquire();
      await db.close();
      return undefined;
    }
  }
}

parentPort!.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (value) => parentPort!.postMessage({ id: req.id, ok: true, value }),
    (err: unknown) => parentPort!.postMessage({ id: req.id, ok: false, error: toWire(err) }),
  );
});
parentPort!.postMessage({ ready: true });
