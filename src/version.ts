/**
 * Kylix's version, from package.json. On its own, so the CLI can print it without loading the
 * server (see docs/architecture.md).
 */
import { readFileSync } from 'node:fs';

/** The version in package.json. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
