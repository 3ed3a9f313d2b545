/**
 * `node:timers`: the realm's own timers (each instance's, counted against its limits like the
 * globals), plus setImmediate as a zero-delay timeout (the realm has no check phase of its own).
 */
type Fn = (...args: unknown[]) => void;

export const setTimeout = globalThis.setTimeout;
export const clearTimeout = globalThis.clearTimeout;
export const setInterval = globalThis.setInterval;
export const clearInterval = globalThis.clearInterval;

/** Runs `fn(...args)` after the current work, as a timeout of 0 ms. */
export function setImmediate(fn: Fn, ...args: unknown[]): ReturnType<typeof globalThis.setTimeout> {
  return globalThis.setTimeout(fn, 0, ...args);
}

/** Cancels what setImmediate scheduled. */
export function clearImmediate(handle: ReturnType<typeof globalThis.setTimeout> | undefined): void {
  globalThis.clearTimeout(handle);
}

export default { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate };
