/**
 * Which SQL may run while the node's data disk is in its reserve (storage/disk-room.ts). An
 * embedded Database writes into the node's data folder like every embedded store, so a tenant's
 * INSERT loop must stop at the reserve as a KeyValue put does, or it fills the disk the platform's
 * own journals need. Reads go on, and so do statements that make room (DELETE, DROP, TRUNCATE:
 * their WAL is small beside what they free); everything else counts as a write.
 */
import { checkDiskRoom } from '../../storage/disk-room.js';
import type { Statement } from './interface.js';
import { codeWords, splitStatements, statementVerb } from './sql-scan.js';

/** First keywords of statements that only read, make room, or control the session. */
const PASSES = new Set([
  'select',
  'show',
  'explain',
  'values',
  'table',
  'delete',
  'drop',
  'truncate',
  'vacuum',
  'begin',
  'start',
  'commit',
  'end',
  'rollback',
  'savepoint',
  'release',
  'set',
  'reset',
]);
/** Words that make a reading statement write: SELECT … INTO, a data-modifying CTE, sequence calls. */
const WRITING_WORDS = new Set(['into', 'insert', 'update', 'merge', 'copy', 'nextval(', 'setval(']);

/** Whether `sql` (one or more statements) may grow the database. */
export function mayGrow(sql: string): boolean {
  for (const one of splitStatements(sql)) {
    const verb = statementVerb(one);
    if (!PASSES.has(verb)) return true;
    if (
      (verb === 'select' || verb === 'values' || verb === 'table') &&
      codeWords(one).some((w) => WRITING_WORDS.has(w))
    )
      return true;
  }
  return false;
}

/** Refuses (ERR_BACKEND_UNAVAILABLE) statements that may grow a database while `dataDir`'s disk is in its reserve. */
export function checkSqlRoom(dataDir: string, statements: readonly Statement[]): void {
  if (statements.some((s) => mayGrow(s.sql))) checkDiskRoom(dataDir, 0, 'The embedded database');
}
