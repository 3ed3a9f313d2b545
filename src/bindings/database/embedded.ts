/**
 * The embedded Database provider: one PGlite (PostgreSQL compiled to WebAssembly) under the data
 * folder, shared by every Database resource, each resource in its own schema (every statement runs
 * with search_path set to it). PGlite runs in a worker thread (pglite-worker.ts); this class only
 * proxies calls to it. Opening takes ~3 s the first time (initdb), ~0.3 s after; it holds ~400 MB.
 *
 * Isolation is by name, not by privilege: a statement that names another resource's schema
 * (`kylix_<namespace>_<name>.table`) can read it, and the catalogs list every schema. That is fine
 * on a developer's laptop; the postgres provider gives each resource its own database.
 */
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { KylixError } from '../../errors.js';
import type { Health, ResourceRef } from '../provider.js';
import { fromWire, identifierFor, notFound, type WireError } from './common.js';
import type { DatabaseProvider, SqlResult, Statement } from './interface.js';
import type { WorkerRequest } from './pglite-worker.js';

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };
/** A request without its id, as callers build it. */
type Call = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Options of the embedded Database provider. */
export interface EmbeddedDatabaseOptions {
  dataDir: string;
}

/** Starts the PGlite worker on `options.dataDir` and resolves once the database is open. */
export async function openEmbeddedDatabase(
  options: EmbeddedDatabaseOptions,
): Promise<EmbeddedDatabaseProvider> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const worker = startWorker(options.dataDir);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      worker.off('exit', onExit);
      reject(
        new KylixError('ERR_BACKEND_UNAVAILABLE', `The embedded database could not start: ${err.message}`),
      );
    };
    const onExit = (code: number) => onError(new Error(`its worker exited with code ${code}`));
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.once('message', () => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      resolve();
    });
  });
  return new EmbeddedDatabaseProvider(worker);
}

/**
 * Starts pglite-worker: the built .js sibling, or from source (tests, `tsx`) the .ts one behind a
 * bootstrap that registers tsx in the worker, because Node 20 does not carry loader hooks into workers.
 */
function startWorker(dataDir: string): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./pglite-worker.js', import.meta.url), { workerData: { dataDir } });
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = new URL('./pglite-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: { dataDir } });
}

/** The embedded Database provider; see the file comment. */
export class EmbeddedDatabaseProvider implements DatabaseProvider {
  readonly name = 'embedded';
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failure?: KylixError;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const call = this.calls.get(reply.id);
      if (!call) return;
      this.calls.delete(reply.id);
      if (reply.ok) call.resolve(reply.value);
      else call.reject(fromWire(reply.error));
    });
    const fail = (err: Error) => {
      this.failure ??= new KylixError(
        'ERR_BACKEND_UNAVAILABLE',
        `The embedded database stopped: ${err.message}`,
      );
      for (const c of this.calls.values()) c.reject(this.failure);
      this.calls.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`its worker exited with code ${code}`)));
  }

  private call<T>(req: Call, ref?: ResourceRef): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject: (e) =>
          reject(ref && e instanceof KylixError && e.code === 'ERR_NOT_FOUND' ? notFound(ref) : e),
      });
      this.worker.postMessage({ ...req, id });
    });
  }

  async ensure(ref: ResourceRef): Promise<void> {
    await this.call({ op: 'ensure', schema: identifierFor(ref) });
  }

  async purge(ref: ResourceRef): Promise<void> {
    await this.call({ op: 'purge', schema: identifierFor(ref) });
  }

  async health(): Promise<Health> {
    try {
      const version = await this.call<string>({ op: 'health' });
      return { ok: true, message: `Embedded PGlite (${version.split(',')[0]}) in a worker thread.` };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.failure) return;
    await this.call({ op: 'close' }).catch(() => {});
    this.failure = new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded database is closed.');
    await this.worker.terminate();
  }

  query(ref: ResourceRef, statement: Statement): Promise<SqlResult> {
    return this.call({ op: 'query', schema: identifierFor(ref), statement }, ref);
  }

  batch(ref: ResourceRef, statements: Statement[]): Promise<SqlResult[]> {
    return this.call({ op: 'batch', schema: identifierFor(ref), statements }, ref);
  }

  begin(ref: ResourceRef, timeoutMs: number): Promise<string> {
    return this.call({ op: 'begin', schema: identifierFor(ref), timeoutMs }, ref);
  }

  queryInTransaction(txId: string, statement: Statement): Promise<SqlResult> {
    return this.call({ op: 'txQuery', txId, statement });
  }

  commit(txId: string): Promise<void> {
    return this.call({ op: 'commit', txId });
  }

  rollback(txId: string): Promise<void> {
    return this.call({ op: 'rollback', txId });
  }

  migrate(ref: ResourceRef, migrations: { name: string; sql: string }[]): Promise<string[]> {
    return this.call({ op: 'migrate', schema: identifierFor(ref), migrations }, ref);
  }
}
