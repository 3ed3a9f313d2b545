/**
 * Why an instance stopped, when the sandbox stopped it for a limit. The gateway sees only a broken
 * connection; it asks here (by the instance's socket path, unique per node) which error to answer
 * with, waiting briefly because the sandbox's message and the connection's end race each other.
 */
import { KylixError } from '../errors.js';
import type { LimitCode } from '../sandbox/protocol.js';

interface Fate {
  code: LimitCode;
  message: string;
  at: number;
}

const fates = new Map<string, Fate>();
const waiters = new Map<string, Set<(f: Fate) => void>>();
/** How long a fate is remembered: long enough for every in-flight request of the instance to ask. */
const KEEP_MS = 30_000;

/** Records that the instance on `socketPath` was stopped for a limit. */
export function recordFate(socketPath: string, code: LimitCode, message: string): void {
  const now = Date.now();
  for (const [k, f] of fates) if (now - f.at > KEEP_MS) fates.delete(k);
  const fate = { code, message, at: now };
  fates.set(socketPath, fate);
  for (const w of waiters.get(socketPath) ?? []) w(fate);
  waiters.delete(socketPath);
}

/** The error for a request whose instance went away, if the sandbox stopped it for a limit. */
export function fateOf(
  socketPath: string,
  functionName: string,
  waitMs = 250,
): Promise<KylixError | undefined> {
  const toError = (f: Fate) =>
    new KylixError(
      f.code,
      f.code === 'ERR_CPU_LIMIT'
        ? `${functionName} was stopped: ${f.message}. Make it do less work per request or raise spec.limits.cpuMs.`
        : `${functionName} was stopped: ${f.message}. Make it use less memory or raise spec.limits.memoryMiB.`,
    );
  const known = fates.get(socketPath);
  if (known) return Promise.resolve(toError(known));
  return new Promise((resolve) => {
    const set = waiters.get(socketPath) ?? new Set();
    waiters.set(socketPath, set);
    const waiter = (f: Fate) => {
      clearTimeout(timer);
      resolve(toError(f));
    };
    const timer = setTimeout(() => {
      set.delete(waiter);
      if (set.size === 0) waiters.delete(socketPath);
      resolve(undefined);
    }, waitMs);
    set.add(waiter);
  });
}
