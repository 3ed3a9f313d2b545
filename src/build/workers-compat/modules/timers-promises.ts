/**
 * `node:timers/promises`: setTimeout, setImmediate and setInterval as promises and an async
 * iterator, each honouring `{ signal }` as Node's do (rejecting with an AbortError), and
 * `scheduler.wait` / `scheduler.yield`.
 */
interface Options {
  signal?: AbortSignal;
  ref?: boolean;
}

function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}

/** Resolves with `value` after `ms`, or rejects when `signal` aborts first. */
export function setTimeout<T = void>(ms?: number, value?: T, options: Options = {}): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      globalThis.clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = globalThis.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(value as T);
    }, ms ?? 1);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves with `value` after the current work. */
export function setImmediate<T = void>(value?: T, options: Options = {}): Promise<T> {
  return setTimeout(0, value, options);
}

/** Yields `value` every `ms` until the loop stops or `signal` aborts. */
export async function* setInterval<T = void>(
  ms?: number,
  value?: T,
  options: Options = {},
): AsyncGenerator<T> {
  for (;;) yield await setTimeout(ms, value, options);
}

export const scheduler = {
  wait: (ms: number, options?: Options) => setTimeout(ms, undefined, options),
  yield: () => setImmediate(),
};

export default { setTimeout, setImmediate, setInterval, scheduler };
