/**
 * AsyncLocalStorage for functions (`node:async_hooks`), over the instance's own Node one: the guest
 * class keeps each Node storage in a WeakMap and hands callbacks through its own closures, so no Node
 * object (storage, AsyncResource, bound function) is ever reachable from tenant code.
 */
import { AsyncLocalStorage as NodeStorage } from 'node:async_hooks';

type Fn = (...args: unknown[]) => unknown;

/** Makes the guest's AsyncLocalStorage class (frozen, with a frozen prototype). */
export function guestAsyncLocalStorage(): unknown {
  const inner = new WeakMap<object, NodeStorage<unknown>>();
  const own = (o: object): NodeStorage<unknown> => {
    const s = inner.get(o);
    if (!s) throw new TypeError('Illegal invocation');
    return s;
  };
  class AsyncLocalStorage {
    constructor() {
      inner.set(this, new NodeStorage());
    }
    run(store: unknown, fn: Fn, ...args: unknown[]): unknown {
      return own(this).run(store, () => fn(...args));
    }
    exit(fn: Fn, ...args: unknown[]): unknown {
      return own(this).exit(() => fn(...args));
    }
    getStore(): unknown {
      return own(this).getStore();
    }
    enterWith(store: unknown): void {
      own(this).enterWith(store);
    }
    disable(): void {
      own(this).disable();
    }
    /** A function that runs `fn` in the async context current now. */
    static bind(fn: Fn): Fn {
      const run = AsyncLocalStorage.snapshot();
      return (...args: unknown[]) => run(fn, ...args);
    }
    /** A function that runs its argument in the async context current now. */
    static snapshot(): (fn: Fn, ...args: unknown[]) => unknown {
      const snap = NodeStorage.snapshot() as (fn: Fn, ...args: unknown[]) => unknown;
      return (fn: Fn, ...args: unknown[]) => snap(() => fn(...args));
    }
  }
  Object.freeze(AsyncLocalStorage.prototype);
  return Object.freeze(AsyncLocalStorage);
}
