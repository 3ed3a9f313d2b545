/**
 * One embedded Database: its PGlite worker thread, the calls in flight to it, and the watchdog
 * that terminates the worker when a running call passes its deadline (PGlite runs a statement in
 * one synchronous WebAssembly loop that nothing inside the worker can interrupt).
 */
import { Worker } from 'node:worker_threads';
import { KylixError } from '../../errors.js';
import { fromWire, statementTimedOut, type WireError } from './common.js';
import type { WorkerData, WorkerRequest } from './pglite-worker.js';

type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError }
  | { id: number; started: true }
  /** The worker rolled back a transaction that passed its time limit. */
  | { txTimedOut: string };
/** A request without its id, as callers build it. */
export type Call = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** How long the call may run once the worker starts it. */
  limitMs: number;
  /** It may grow the database: it was let in while the disk had room (disk-writes.ts). */
  grows: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Starts pglite-worker: the built .js sibling, or from source (tests, `tsx`) the .ts one behind a
 * bootstrap that registers tsx in the worker, because Node 20 does not carry loader hooks into workers.
 */
export function startWorker(data: WorkerData): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./pglite-worker.js', import.meta.url), { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = new URL('./pglite-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

/** Resolves when the worker says it is ready; rejects if it fails or exits first. */
export function whenReady(worker: Worker, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      worker.off('exit', onExit);
      worker.off('message', onMessage);
      reject(new KylixError('ERR_BACKEND_UNAVAILABLE', `${what} could not start: ${err.message}`));
    };
    const onExit = (code: number) => onError(new Error(`its worker exited with code ${code}`));
    const onMessage = (m: { ready?: boolean }) => {
      if (!m?.ready) return;
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
      resolve();
    };
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.on('message', onMessage);
  });
}

/** A running Database worker; see the file comment. */
export class DatabaseInstance {
  private nextId = 1;
  private readonly calls = new Map<number, Pending>();
  private failure?: KylixError;
  /** Open interactive transactions on this instance. */
  readonly txs = new Set<string>();
  lastUsed = Date.now();
  /** Told when a call settles and leaves the instance idle (it may be closed now). */
  onIdle?: () => void;
  /** Takes no new work: it finishes what it has and is closed (engine-slots.ts). */
  draining = false;
  /** Settles once the worker is gone. */
  readonly gone: Promise<void>;
  private markGone!: () => void;

  constructor(
    private readonly worker: Worker,
    /** Called once when the worker is gone (closed, crashed or terminated), with the txs it held. */
    private readonly onGone: (txs: string[], timedOut: boolean) => void,
    /** Called when the worker rolled back a transaction that passed its time limit. */
    onTxTimedOut: (tx: string) => void = () => {},
  ) {
    this.gone = new Promise((resolve) => {
      this.markGone = resolve;
    });
    worker.on('message', (reply: Reply) => {
      if ('txTimedOut' in reply) {
        this.txs.delete(reply.txTimedOut);
        onTxTimedOut(reply.txTimedOut);
        return;
      }
      const call = this.calls.get(reply.id);
      if (!call) return;
      if ('started' in reply) {
        call.timer = setTimeout(() => this.kill(statementTimedOut(call.limitMs)), call.limitMs);
        return;
      }
      clearTimeout(call.timer);
      this.calls.delete(reply.id);
      if (reply.ok) call.resolve(reply.value);
      else call.reject(fromWire(reply.error));
      if (this.idle) this.onIdle?.();
    });
    const fail = (err: Error) =>
      this.fail(new KylixError('ERR_BACKEND_UNAVAILABLE', `The embedded database stopped: ${err.message}`));
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`its worker exited with code ${code}`)));
  }

  /** Whether nothing is running or open, so the worker may be closed. */
  get idle(): boolean {
    return this.calls.size === 0 && this.txs.size === 0;
  }

  get alive(): boolean {
    return !this.failure;
  }

  /** Whether a call that may grow the database is in flight. */
  get growing(): boolean {
    for (const c of this.calls.values()) if (c.grows) return true;
    return false;
  }

  /**
   * Sends a call; it may run for `limitMs` once the worker starts it (time queued does not count).
   * `grows`: it may grow the database, so the disk watchdog stops it at the reserve (embedded.ts).
   */
  call<T>(req: Call, limitMs: number, grows = false): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    this.lastUsed = Date.now();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject, limitMs, grows });
      this.worker.postMessage({ ...req, id });
    });
  }

  /** Closes PGlite cleanly, or terminates the worker if it does not answer within `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    if (this.failure) return;
    const done = this.call({ op: 'close' }, graceMs).catch(() => {});
    const timer = setTimeout(() => this.kill(closedError()), graceMs);
    await done;
    clearTimeout(timer);
    this.fail(closedError());
    await this.worker.terminate();
  }

  /** Terminates the worker now: every call in flight fails with `why`. */
  kill(why: KylixError): void {
    this.fail(why);
    void this.worker.terminate();
  }

  private fail(why: KylixError): void {
    if (this.failure) return;
    this.failure = why;
    for (const c of this.calls.values()) {
      clearTimeout(c.timer);
      c.reject(why);
    }
    this.calls.clear();
    this.onGone([...this.txs], why.code === 'ERR_TIMEOUT');
    this.txs.clear();
    this.markGone();
  }
}

function closedError(): KylixError {
  return new KylixError('ERR_BACKEND_UNAVAILABLE', 'The embedded database is closed.');
}
