/**
 * `node:process`, and the `process` the bundled polyfills use: env holds the function's string vars
 * and secrets; nothing reaches a real process.
 */
import { state } from './state.js';

type Fn = (...args: unknown[]) => unknown;
const noop = () => process;

const env: Record<string, string> = {};
for (const [name, value] of Object.entries(state.env)) if (typeof value === 'string') env[name] = value;

/** See the file comment. */
const process = {
  env,
  argv: [] as string[],
  platform: 'linux',
  browser: true,
  version: '',
  versions: {} as Record<string, string>,
  title: 'kylix',
  pid: 1,
  cwd: () => '/',
  chdir: () => {
    throw new Error('process.chdir() is not supported in a function.');
  },
  exit: () => {
    throw new Error('process.exit() is not supported in a function.');
  },
  nextTick: (fn: Fn, ...args: unknown[]) => queueMicrotask(() => fn(...args)),
  emitWarning: (warning: unknown) => console.warn(warning),
  hrtime: Object.assign(
    (previous?: [number, number]) => {
      const ns = Math.round(performance.now() * 1e6);
      const t: [number, number] = [Math.floor(ns / 1e9), ns % 1e9];
      if (!previous) return t;
      const d = (t[0] - previous[0]) * 1e9 + (t[1] - previous[1]);
      return [Math.floor(d / 1e9), d % 1e9];
    },
    { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
  ),
  memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
  uptime: () => performance.now() / 1000,
  on: noop,
  once: noop,
  off: noop,
  addListener: noop,
  removeListener: noop,
  removeAllListeners: noop,
  emit: () => false,
  listeners: () => [],
};

export { process };
export default process;
