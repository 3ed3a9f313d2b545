/**
 * What a bundle's compat modules (`cloudflare:workers`, `node:async_hooks`; see src/build/) need
 * from the instance at run time: the function's env, waitUntil, and an AsyncLocalStorage class. The
 * instance puts them under WORKERS_GLOBAL while the bundle loads, the bundle's compat prelude takes
 * them, and the instance removes the global once the module is loaded.
 */
import { guestAsyncLocalStorage } from './async-local-storage.js';

/** The global the state travels under while the bundle loads. Same name in src/build/workers-compat.ts. */
export const WORKERS_GLOBAL = '__kylix_workers__';

/**
 * Puts the state under WORKERS_GLOBAL; returns the function that removes it. `waitUntil` outside a
 * request keeps the promise alive and logs its failure, as Workers' module-level waitUntil does.
 */
export function offerWorkersState(env: Record<string, unknown>, logError: (...args: unknown[]) => void) {
  const state = Object.freeze({
    env,
    waitUntil(promise: unknown) {
      Promise.resolve(promise).catch((err) => logError('waitUntil promise rejected:', err));
    },
    AsyncLocalStorage: guestAsyncLocalStorage(),
  });
  Object.defineProperty(globalThis, WORKERS_GLOBAL, { value: state, configurable: true, enumerable: false });
  return () => void Reflect.deleteProperty(globalThis, WORKERS_GLOBAL);
}
