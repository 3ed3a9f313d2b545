/**
 * What the instance offers a bundle while it loads (src/sandbox/workers-compat/workers-module.ts):
 * the env, waitUntil and AsyncLocalStorage. The bundle's prelude (see ../plugin.ts) takes it into
 * WORKERS_STATE before any module runs; a bundle run elsewhere gets an empty env.
 */

/** The shape the instance offers. */
export interface WorkersState {
  env: Record<string, unknown>;
  waitUntil(promise: unknown): void;
  AsyncLocalStorage: new <T>() => {
    run<R>(store: T, fn: (...args: unknown[]) => R, ...args: unknown[]): R;
    getStore(): T | undefined;
  };
}

declare const __kylix_workers_state: WorkersState | undefined;

/** A storage whose store lives for the synchronous part of run() only: for bundles run outside Kylix. */
class SyncStorage<T> {
  private store: T | undefined;
  run<R>(store: T, fn: (...args: unknown[]) => R, ...args: unknown[]): R {
    const before = this.store;
    this.store = store;
    try {
      return fn(...args);
    } finally {
      this.store = before;
    }
  }
  getStore(): T | undefined {
    return this.store;
  }
}

/** The state the instance offered, or a stand-in. */
export const state: WorkersState =
  typeof __kylix_workers_state === 'object' && __kylix_workers_state !== null
    ? __kylix_workers_state
    : { env: {}, waitUntil: () => {}, AsyncLocalStorage: SyncStorage as WorkersState['AsyncLocalStorage'] };
