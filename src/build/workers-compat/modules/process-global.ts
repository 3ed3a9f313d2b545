/**
 * Workers' global `process` under nodejs_compat (spec.compatibilityFlags): injected into the
 * bundle, so every free `process` in it (the function's code and its packages) is this module's,
 * and set on globalThis for code that looks it up there. Without the flag `process` stays
 * undefined, as on Workers without it.
 */
import { process } from './process.js';

if (!('process' in globalThis))
  Object.defineProperty(globalThis, 'process', { value: process, writable: true, configurable: true });

export { process };
