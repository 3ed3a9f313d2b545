/**
 * Temporary folders for tests: each is removed when the test file's process exits, after every
 * test and after hook has run (so a server a hook stops is no longer writing into it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs: string[] = [];
process.once('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A new empty folder `<tmp>/kylix-<prefix>-XXXXXX`, removed at exit. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kylix-${prefix}-`));
  dirs.push(dir);
  return dir;
}
