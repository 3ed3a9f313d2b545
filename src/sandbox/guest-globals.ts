/**
 * The plain objects the guest realm installs in place of Node's: console, performance, navigator,
 * timers that return numbers, Service Worker listeners and Workers' scheduler. Each reaches nothing
 * of the host but the function it wraps (see guest-realm.ts, which installs them).
 */
import { SlotTable } from './slot-table.js';

type Fn = (...args: unknown[]) => unknown;
const { freeze } = Object;
const { apply } = Reflect;

/** console, as plain functions over the log capture installed by the instance (or Node's own). */
export function guestConsole(host: Console): Console {
  const log = host.log as Fn;
  const error = host.error as Fn;
  const counts = new Map<string, number>();
  const timers = new Map<string, number>();
  const now = performance.now.bind(performance);
  const elapsed = (label: string) => `${label}: ${(now() - (timers.get(label) ?? now())).toFixed(3)}ms`;
  const c: Record<string, Fn> = {};
  for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace'] as const) {
    const method = host[level] as Fn;
    c[level] = (...args) => void apply(method, undefined, args);
  }
  Object.assign(c, {
    assert: (ok?: unknown, ...args: unknown[]) =>
      void (ok || apply(error, undefined, ['Assertion failed', ...args])),
    dir: (value?: unknown) => void log(value),
    dirxml: (...args: unknown[]) => void apply(log, undefined, args),
    table: (value?: unknown) => void log(value),
    group: (...args: unknown[]) => void (args.length && apply(log, undefined, args)),
    groupCollapsed: (...args: unknown[]) => void (args.length && apply(log, undefined, args)),
    groupEnd: () => {},
    clear: () => {},
    count: (label = 'default') => {
      const n = (counts.get(String(label)) ?? 0) + 1;
      counts.set(String(label), n);
      log(`${label}: ${n}`);
    },
    countReset: (label = 'default') => void counts.delete(String(label)),
    time: (label = 'default') => void timers.set(String(label), now()),
    timeLog: (label = 'default', ...args: unknown[]) =>
      void apply(log, undefined, [elapsed(String(label)), ...args]),
    timeEnd: (label = 'default') => {
      log(elapsed(String(label)));
      timers.delete(String(label));
    },
  });
  return c as unknown as Console;
}

/** performance: the clock and user timing, without Node's resource timing, timerify or loop stats. */
export function guestPerformance(host: Performance): Performance {
  const bound = (name: keyof Performance) => (host[name] as Fn).bind(host);
  const userTiming = (e: PerformanceEntry) => e.entryType === 'mark' || e.entryType === 'measure';
  const now = bound('now');
  const getEntries = bound('getEntries') as () => PerformanceEntry[];
  return {
    timeOrigin: host.timeOrigin,
    now: () => now(),
    mark: bound('mark'),
    measure: bound('measure'),
    clearMarks: bound('clearMarks'),
    clearMeasures: bound('clearMeasures'),
    getEntries: () => getEntries().filter(userTiming),
    getEntriesByName: (name: string, type?: string) =>
      getEntries().filter(
        (e) => userTiming(e) && e.name === name && (type === undefined || e.entryType === type),
      ),
    getEntriesByType: (type: string) => getEntries().filter((e) => userTiming(e) && e.entryType === type),
    toJSON: () => ({ timeOrigin: host.timeOrigin }),
  } as unknown as Performance;
}

/**
 * What navigator.userAgent says: Workers' own string, since libraries pick their runtime adapter by it
 * (Hono's getRuntimeKey() answers 'workerd', so its env() helper reads the env argument, not a
 * `process.env` that does not exist here).
 */
export const GUEST_USER_AGENT = 'Cloudflare-Workers';

/** navigator: what it says about the runtime, without `locks` (shared by every thread in the process). */
export function guestNavigator(host: Navigator | undefined): Navigator {
  return {
    userAgent: GUEST_USER_AGENT,
    language: host?.language ?? 'en-US',
    languages: freeze([...(host?.languages ?? ['en-US'])]),
    // 1, as on Workers: a request runs on one thread, and the node's core count is not the tenant's to know.
    hardwareConcurrency: 1,
  } as unknown as Navigator;
}

/**
 * Timers that return numbers, as on Workers: Node's Timeout objects link every timer of the thread
 * (the host's too) through _idleNext/_idlePrev, and call their callback with the Timeout as `this`.
 */
export function guestTimers() {
  const hostSet = setTimeout;
  const hostSetInterval = setInterval;
  const hostClear = clearTimeout;
  // Slots, not a Map keyed by ever-new ids, so a timer per request does not make V8 rehash and
  // promote what retired tables point at (see slot-table.ts).
  // Up to 2^20 live timers (the rest of an id is the slot's generation).
  const live = new SlotTable<{ timer?: ReturnType<typeof setTimeout> }>(20);
  const start = (repeat: boolean, callback: unknown, delay: unknown, args: unknown[]): number => {
    if (typeof callback !== 'function') throw new TypeError('The callback must be a function.');
    // Converted before the timer takes a slot: a delay whose conversion throws (a Symbol) or calls
    // clearTimeout (a valueOf) must leave nothing behind.
    const ms = Number(delay) || 0;
    const entry: { timer?: ReturnType<typeof setTimeout> } = {};
    const id = live.add(entry);
    const run = () => {
      if (!repeat) live.delete(id);
      apply(callback as Fn, globalThis, args);
    };
    entry.timer = (repeat ? hostSetInterval : hostSet)(run, ms);
    return id;
  };
  const clear = (id?: unknown) => {
    const entry = live.delete(Number(id));
    if (entry) hostClear(entry.timer);
  };
  return {
    setTimeout: (callback: unknown, delay?: unknown, ...args: unknown[]) =>
      start(false, callback, delay, args),
    setInterval: (callback: unknown, delay?: unknown, ...args: unknown[]) =>
      start(true, callback, delay, args),
    clearTimeout: clear,
    clearInterval: clear,
  };
}

/** Listeners of Service Worker syntax (`addEventListener('fetch', …)`), by event type. */
const listeners = new Map<string, Fn[]>();

/** The listeners a function registered for `type` with addEventListener, in order. */
export function eventListeners(type: string): readonly Fn[] {
  return [...(listeners.get(type) ?? [])];
}

/**
 * addEventListener and removeEventListener of Service Worker syntax, as plain functions over a list
 * only the instance reads: the global object itself is no EventTarget (it would reach Node's).
 */
export function guestEventListeners() {
  return {
    addEventListener(type: unknown, listener: unknown) {
      if (typeof listener !== 'function') return;
      const list = listeners.get(String(type)) ?? [];
      if (!list.includes(listener as Fn)) list.push(listener as Fn);
      listeners.set(String(type), list);
    },
    removeEventListener(type: unknown, listener: unknown) {
      const list = listeners.get(String(type));
      const at = list?.indexOf(listener as Fn) ?? -1;
      if (list && at >= 0) list.splice(at, 1);
    },
  };
}

/** Workers' `scheduler`: wait(ms) resolves after ms, over the guest's own setTimeout. */
export function guestScheduler(timers: ReturnType<typeof guestTimers>) {
  return {
    wait(ms: unknown, options?: { signal?: AbortSignal }): Promise<void> {
      return new Promise((resolve, reject) => {
        const signal = options?.signal;
        if (signal?.aborted) return reject(signal.reason);
        const id = timers.setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        const onAbort = () => {
          timers.clearTimeout(id);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
