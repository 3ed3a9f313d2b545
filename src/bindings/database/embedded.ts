/**
 * The embedded Database provider: each Database resource is its own PGlite (PostgreSQL compiled to
 * WebAssembly) with its own data folder `<dataDir>/<resourceIdentity().sql>`, run in its own worker
 * thread (pglite-worker.ts). So a Database cannot name, read, lock or slow down another: they do
 * not share an engine, a session or a thread. A worker is opened on first use, closed when idle
 * (or when more than `maxOpen` are open), and terminated — then reopened on the next call — when a
 * statement runs past `statementTimeoutMs`, which the caller sees as ERR_TIMEOUT.
 *
 * Cost per open Database: ~1 s to create (unpacked from a template made once by initdb, ~8 s),
 * ~0.3 s to reopen, and the memory of one PGlite engine (see docs/operations.md). How many engines
 * run at once, and how many of them one namespace may hold, is engine-slots.ts's to say.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KylixError } from '../../errors.js';
import { inReserve } from '../../storage/disk-room.js';
import type { Health, ResourceRef } from '../provider.js';
import { identifierFor, notFound, transactionClosed } from './common.js';
import { admitSql } from './disk-writes.js';
import { type Call, DatabaseInstance, startWorker, whenReady } from './embedded-instance.js';
import { EngineSlots } from './engine-slots.js';
import type { DatabaseProvider, SqlResult, Statement } from './interface.js';

/** Options of the embedded Database provider. */
export interface EmbeddedDatabaseOptions {
  dataDir: string;
  /** How long one call's SQL may run before its Database's engine is stopped (default 30 s). */
  statementTimeoutMs?: number;
  /** Close a Database's engine after this long unused (default 60 s). */
  idleMs?: number;
  /** Engines open at once (default KYLIX_DATABASE_ENGINES, else 8); see engine-slots.ts. */
  maxOpen?: number;
}

/** Engines a node runs at once unless its options say otherwise. */
const DEFAULT_ENGINES = Math.max(1, Math.floor(Number(process.env.KYLIX_DATABASE_ENGINES) || 8));
/** How long an engine may take to open before it is given up (its slot is not held for good). */
const START_TIMEOUT_MS = 60_000;

/** Migrations may run longer than one statement (an index on a large table). */
const MIGRATION_TIMEOUT_MS = 300_000;
/** Time a transaction's own rollback gets after its timeout before its engine is stopped. */
const TX_GRACE_MS = 1000;
/** How often the disk is read while a statement that may grow a database runs (see stopAtReserve). */
const DISK_WATCH_MS = 250;
/** Bump when the template's content changes, so an old template is not reused. */
const TEMPLATE = 'template-v1.tar';

/**
 * Where this machine keeps a copy of the template: the user's cache folder, keyed by the PGlite
 * version in use, or undefined when there is no cache folder to use.
 */
function templateCachePath(): string | undefined {
  try {
    const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
    // dist/index.js → the package's own package.json (its exports map hides it from import).
    const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
    const { version } = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    return join(base, 'kylix', `pglite-${version}-${TEMPLATE}`);
  } catch {
    return undefined;
  }
}

/** Prepares the data folder; Databases are opened on first use. */
export async function openEmbeddedDatabase(
  options: EmbeddedDatabaseOptions,
): Promise<EmbeddedDatabaseProvider> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  return new EmbeddedDatabaseProvider(options);
}

/** The embedded Database provider; see the file comment. */
export class EmbeddedDatabaseProvider implements DatabaseProvider {
  readonly name = 'embedded';
  private readonly open = new Map<string, Promise<DatabaseInstance>>();
  private readonly instances = new Map<string, DatabaseInstance>();
  /** The namespace of each Database id, for the engine slots. */
  private readonly namespaces = new Map<string, string>();
  private readonly slots: EngineSlots;
  /** Each open transaction and the Database it belongs to, with its deadline. */
  private readonly txs = new Map<string, { id: string; deadline: number }>();
  private readonly timedOut = new Set<string>();
  private template?: Promise<void>;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly diskWatch: NodeJS.Timeout;
  private readonly statementTimeoutMs: number;

  constructor(private readonly options: EmbeddedDatabaseOptions) {
    this.statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
    const idleMs = options.idleMs ?? 60_000;
    this.sweeper = setInterval(() => this.closeIdle(idleMs), Math.min(idleMs, 10_000));
    this.sweeper.unref();
    this.diskWatch = setInterval(() => this.stopAtReserve(), DISK_WATCH_MS);
    this.diskWatch.unref();
    this.slots = new EngineSlots(options.maxOpen ?? DEFAULT_ENGINES, {
      closeIdle: (only, prefer) => this.closeOneIdle(only, prefer),
      drain: (ns) => this.drainOne(ns),
    });
  }

  private dir(id: string): string {
    return join(this.options.dataDir, id);
  }

  private ready(id: string): string {
    return join(this.dir(id), '.kylix-ready');
  }

  /**
   * Runs initdb once, in a worker, and keeps the result as a tar file in the data folder. The result
   * is also kept in the user's cache (per PGlite build), so a second data folder on this machine —
   * another project, a test — copies it instead of running initdb again.
   */
  private ensureTemplate(): Promise<void> {
    const path = join(this.options.dataDir, TEMPLATE);
    if (existsSync(path)) return Promise.resolve();
    this.template ??= (async () => {
      const cached = templateCachePath();
      if (cached && existsSync(cached)) {
        try {
          copyFileSync(cached, path);
          return;
        } catch {
          // fall through: make it here
        }
      }
      const worker = startWorker({ mode: 'template', template: path });
      await whenReady(worker, 'The embedded database');
      if (cached) {
        try {
          mkdirSync(dirname(cached), { recursive: true });
          // Written under another name, then renamed: a reader never sees half a template.
          copyFileSync(path, `${cached}.${process.pid}`);
          renameSync(`${cached}.${process.pid}`, cached);
        } catch {
          // the cache is an optimisation only
        }
      }
    })().finally(() => {
      this.template = undefined;
    });
    return this.template;
  }

  /** The running engine of a Database, started if needed; ERR_NOT_FOUND if it was never ensured. */
  private instance(ref: ResourceRef): Promise<DatabaseInstance> {
    if (this.closed)
      return Promise.reject(new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded database is closed.'));
    const id = identifierFor(ref);
    const running = this.instances.get(id);
    if (running?.alive && !running.draining) return Promise.resolve(running);
    let opening = this.open.get(id);
    if (!opening) {
      // A draining engine takes no new work: the call waits for it to close, then starts it again.
      const start = () => this.start(id, ref.namespace);
      opening = (running?.alive ? running.gone.then(start) : start()).finally(() => this.open.delete(id));
      this.open.set(id, opening);
    }
    return opening.catch((err) => {
      throw err instanceof KylixError && err.code === 'ERR_NOT_FOUND' ? notFound(ref) : err;
    });
  }

  private async start(id: string, namespace: string, creating = false): Promise<DatabaseInstance> {
    if (!creating && !existsSync(this.ready(id))) throw new KylixError('ERR_NOT_FOUND', id);
    const release = await this.slots.acquire(namespace);
    let worker: ReturnType<typeof startWorker> | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const template = join(this.options.dataDir, TEMPLATE);
      worker = startWorker({ mode: 'serve', dir: this.dir(id), template, readyMarker: this.ready(id) });
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new KylixError(
                'ERR_BACKEND_UNAVAILABLE',
                `The embedded database did not open within ${START_TIMEOUT_MS / 1000} s; retry.`,
              ),
            ),
          START_TIMEOUT_MS,
        );
      });
      await Promise.race([whenReady(worker, 'The embedded database'), timedOut]);
    } catch (err) {
      void worker?.terminate();
      release();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.namespaces.set(id, namespace);
    const instance = new DatabaseInstance(
      worker,
      (txs, timedOut) => {
        release();
        if (this.instances.get(id) === instance) this.instances.delete(id);
        for (const tx of txs) {
          this.txs.delete(tx);
          if (timedOut) this.markTimedOut(tx);
        }
      },
      // The worker rolled back a transaction that outlived its time limit: forget it here too, so
      // its engine can be closed once idle, whether or not the function ever touches it again.
      (tx) => {
        this.txs.delete(tx);
        this.markTimedOut(tx);
        this.idled(id, instance);
      },
    );
    instance.onIdle = () => this.idled(id, instance);
    this.instances.set(id, instance);
    return instance;
  }

  /**
   * An engine finished its work: a draining one is closed now; starts waiting for a slot look again.
   * On the next turn, not at once: a `begin` that just answered adds its transaction in the caller's
   * continuation, and until then the engine only looks idle.
   */
  private idled(id: string, instance: DatabaseInstance): void {
    setImmediate(() => {
      if (instance.draining && instance.idle && this.instances.get(id) === instance) {
        this.instances.delete(id);
        void instance.close();
      }
      this.slots.wake();
    });
  }

  /**
   * Closes the least recently used idle engine — of `only` when given, else `prefer`'s first, else
   * any — and resolves once it is gone (its slot released); false if none is idle.
   */
  private async closeOneIdle(only: string | undefined, prefer: string | undefined): Promise<boolean> {
    const oldest = (ns: string | undefined) => {
      let found: [string, DatabaseInstance] | undefined;
      for (const entry of this.instances) {
        const [id, instance] = entry;
        if (!instance.idle || (ns !== undefined && this.namespaces.get(id) !== ns)) continue;
        if (!found || instance.lastUsed < found[1].lastUsed) found = entry;
      }
      return found;
    };
    const victim =
      only !== undefined ? oldest(only) : (prefer !== undefined && oldest(prefer)) || oldest(undefined);
    if (!victim) return false;
    this.instances.delete(victim[0]);
    await victim[1].close();
    return true;
  }

  /** Drains one busy engine of `namespace` (see engine-slots.ts); false if it runs none. */
  private drainOne(namespace: string): boolean {
    let pick: [string, DatabaseInstance] | undefined;
    for (const entry of this.instances) {
      const [id, instance] = entry;
      if (this.namespaces.get(id) !== namespace || !instance.alive) continue;
      if (instance.draining) return true;
      if (!pick || instance.lastUsed < pick[1].lastUsed) pick = entry;
    }
    if (!pick) return false;
    pick[1].draining = true;
    this.idled(pick[0], pick[1]);
    return true;
  }

  private closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const [id, instance] of this.instances)
      if (instance.idle && now - instance.lastUsed > idleMs) {
        this.instances.delete(id);
        instance.close().catch(() => {});
      }
  }

  private markTimedOut(txId: string): void {
    this.timedOut.add(txId);
    if (this.timedOut.size > 1000) this.timedOut.delete(this.timedOut.values().next().value!);
  }

  async ensure(ref: ResourceRef): Promise<void> {
    const id = identifierFor(ref);
    if (existsSync(this.ready(id))) return;
    await this.open.get(id)?.catch(() => {});
    if (existsSync(this.ready(id))) return;
    // A folder without the ready marker is a creation that did not finish: start it again.
    rmSync(this.dir(id), { recursive: true, force: true });
    await this.ensureTemplate();
    mkdirSync(this.dir(id), { recursive: true, mode: 0o700 });
    // The worker unpacks the template into the empty folder, then writes the ready marker.
    const opening = this.start(id, ref.namespace, true).finally(() => this.open.delete(id));
    this.open.set(id, opening);
    await opening;
  }

  async purge(ref: ResourceRef): Promise<void> {
    const id = identifierFor(ref);
    await this.open.get(id)?.catch(() => {});
    const instance = this.instances.get(id);
    this.instances.delete(id);
    this.namespaces.delete(id);
    if (instance) instance.kill(new KylixError('ERR_NOT_FOUND', `Database "${ref.name}" was deleted.`));
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  async health(): Promise<Health> {
    if (this.closed) return { ok: false, message: 'The embedded database is closed.' };
    return {
      ok: true,
      message: `Embedded PGlite (PostgreSQL in WebAssembly): one engine per Database, ${this.instances.size} open.`,
    };
  }

  /**
   * The disk watchdog: a statement let in while the disk had room may go on writing far past the
   * reserve (one INSERT … SELECT writes gigabytes within its time limit, and several databases
   * write at once), so each engine running such a call is stopped once the disk is in the reserve,
   * as a statement past its time is (PGlite cannot be interrupted otherwise). Its call fails with
   * ERR_BACKEND_UNAVAILABLE and its transaction is rolled back.
   */
  private stopAtReserve(): void {
    const growing = [...this.instances.values()].filter((i) => i.alive && i.growing);
    if (growing.length === 0 || !inReserve(this.options.dataDir)) return;
    for (const i of growing)
      i.kill(
        new KylixError(
          'ERR_BACKEND_UNAVAILABLE',
          "The embedded database stopped this statement: the node's data disk reached the reserve kept for the platform (KYLIX_DISK_RESERVE_MIB) while it wrote, and its transaction was rolled back. Delete data, or give the node more disk.",
        ),
      );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    clearInterval(this.diskWatch);
    this.slots.close();
    await Promise.all([...this.open.values()].map((p) => p.catch(() => {})));
    await Promise.all([...this.instances.values()].map((i) => i.close(2000)));
    this.instances.clear();
  }

  async query(ref: ResourceRef, statement: Statement): Promise<SqlResult> {
    const { statements, grows } = admitSql(this.options.dataDir, [statement]);
    return (await this.instance(ref)).call(
      { op: 'query', statement: statements[0]! },
      this.statementTimeoutMs,
      grows,
    );
  }

  async batch(ref: ResourceRef, statements: Statement[]): Promise<SqlResult[]> {
    const admitted = admitSql(this.options.dataDir, statements);
    return (await this.instance(ref)).call(
      { op: 'batch', statements: admitted.statements },
      this.statementTimeoutMs,
      admitted.grows,
    );
  }

  async begin(ref: ResourceRef, timeoutMs: number): Promise<string> {
    const instance = await this.instance(ref);
    const txId = await instance.call<string>({ op: 'begin', timeoutMs }, this.statementTimeoutMs);
    instance.txs.add(txId);
    this.txs.set(txId, { id: identifierFor(ref), deadline: Date.now() + timeoutMs });
    return txId;
  }

  private txCall<T>(txId: string, req: Call, grows = false): Promise<T> {
    const tx = this.txs.get(txId);
    const instance = tx && this.instances.get(tx.id);
    if (!tx || !instance?.alive || !instance.txs.has(txId))
      return Promise.reject(
        this.timedOut.has(txId)
          ? transactionClosed(txId, 'timed out and was rolled back')
          : transactionClosed(txId),
      );
    const limit = Math.max(1, Math.min(this.statementTimeoutMs, tx.deadline + TX_GRACE_MS - Date.now()));
    return instance.call<T>(req, limit, grows).catch((err: unknown) => {
      if (err instanceof KylixError && err.code === 'ERR_TRANSACTION_CLOSED') this.endTx(txId, instance);
      throw err;
    });
  }

  private endTx(txId: string, instance: DatabaseInstance): void {
    const tx = this.txs.get(txId);
    if (tx && Date.now() >= tx.deadline) this.markTimedOut(txId);
    this.txs.delete(txId);
    instance.txs.delete(txId);
    // Its last transaction may have been what a draining engine waited for.
    if (tx) this.idled(tx.id, instance);
    else this.slots.wake();
  }

  async queryInTransaction(txId: string, statement: Statement): Promise<SqlResult> {
    // Refused before it reaches the engine: the transaction goes on, and the function may roll it back.
    const { statements, grows } = admitSql(this.options.dataDir, [statement]);
    const instance = this.instances.get(this.txs.get(txId)?.id ?? '');
    try {
      return await this.txCall(txId, { op: 'txQuery', txId, statement: statements[0]! }, grows);
    } catch (err) {
      // A failed statement rolls the transaction back (the worker did so already).
      if (instance) this.endTx(txId, instance);
      throw err;
    }
  }

  async commit(txId: string): Promise<void> {
    return this.finish(txId, 'commit');
  }

  async rollback(txId: string): Promise<void> {
    return this.finish(txId, 'rollback');
  }

  private async finish(txId: string, op: 'commit' | 'rollback'): Promise<void> {
    const instance = this.instances.get(this.txs.get(txId)?.id ?? '');
    try {
      await this.txCall(txId, { op, txId });
    } finally {
      if (instance) this.endTx(txId, instance);
    }
  }

  async migrate(ref: ResourceRef, migrations: { name: string; sql: string }[]): Promise<string[]> {
    const limit = Math.max(MIGRATION_TIMEOUT_MS, this.statementTimeoutMs);
    return (await this.instance(ref)).call({ op: 'migrate', migrations }, limit, true);
  }
}
