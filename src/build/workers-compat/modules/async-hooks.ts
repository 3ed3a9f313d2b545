/**
 * `node:async_hooks` as Workers offers it: AsyncLocalStorage (the instance's, see state.ts) and
 * AsyncResource over it.
 */
import { state } from './state.js';

type Fn = (...args: unknown[]) => unknown;

/** AsyncLocalStorage: a store that follows the async calls made inside run(). */
export const AsyncLocalStorage = state.AsyncLocalStorage;

const Snapshots = state.AsyncLocalStorage as unknown as {
  snapshot?: () => (fn: Fn, ...args: unknown[]) => unknown;
};

/** Runs functions later in the async context it was made in. */
export class AsyncResource {
  private readonly run: (fn: Fn, ...args: unknown[]) => unknown;
  constructor(readonly type = 'AsyncResource') {
    this.run = Snapshots.snapshot?.() ?? ((fn, ...args) => fn(...args));
  }
  runInAsyncScope(fn: Fn, thisArg?: unknown, ...args: unknown[]): unknown {
    return this.run(() => fn.apply(thisArg, args));
  }
  bind(fn: Fn, thisArg?: unknown): Fn {
    return (...args: unknown[]) => this.runInAsyncScope(fn, thisArg, ...args);
  }
  emitDestroy(): this {
    return this;
  }
  static bind(fn: Fn, type?: string, thisArg?: unknown): Fn {
    return new AsyncResource(type).bind(fn, thisArg);
  }
}

export default { AsyncLocalStorage, AsyncResource };
