/**
 * Which SQL may run while the node's data disk is in its reserve (storage/disk-room.ts). An
 * embedded Database writes into the node's data folder like every embedded store, so a tenant's
 * INSERT loop must stop at the reserve as a KeyValue put does, or it fills the disk the platform's
 * own journals need.
 *
 * A statement's first keyword cannot say whether it writes: a SELECT may call a function that
 * inserts or create a large object, EXPLAIN ANALYZE runs the INSERT it explains, a DELETE may
 * follow an inserting CTE. So in the reserve 1. reads (SELECT, VALUES, TABLE, EXPLAIN, SHOW) run
 * in a read-only transaction, where the engine itself refuses every write, whatever calls it;
 * 2. statements that make room (DELETE, DROP, TRUNCATE, VACUUM: their WAL is small beside what
 * they free) run only in a database that holds no code of its own (a function, a trigger, a rule
 * could write for them) and when they call no writing function themselves; 3. session control
 * goes on; 4. everything else is refused.
 */
import { checkDiskRoom } from '../../storage/disk-room.js';
import type { Statement } from './interface.js';
import { codeWords, splitStatements, statementVerb } from './sql-scan.js';

/** First keywords of statements that only read: in the reserve they run read-only. */
const READS = new Set(['select', 'show', 'explain', 'values', 'table']);
/** First keywords of statements that make room. */
const ROOM = new Set(['delete', 'drop', 'truncate', 'vacuum']);
/** First keywords of session control, which writes nothing. */
const SESSION = new Set([
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
/**
 * Words that make any statement a write: SELECT … INTO, a data-modifying CTE, COPY, sequence and
 * large-object calls, and a call through a quoted name (which no word list could check).
 */
const WRITING_WORDS = new Set([
  'into',
  'insert',
  'update',
  'merge',
  'copy',
  'nextval(',
  'setval(',
  'lo_creat(',
  'lo_create(',
  'lo_from_bytea(',
  'lo_put(',
  'lo_open(',
  'lowrite(',
]);
const writes = (words: string[]) =>
  words.some((w, i) => WRITING_WORDS.has(w) || (w === '<ident>' && words[i + 1] === '('));

/** How the statements of `sql` may run in the reserve: not at all ('grow'), read-only, as room-makers, or freely. */
export function reserveMode(sql: string): 'grow' | 'read' | 'room' | 'free' {
  let mode: 'read' | 'room' | 'free' | undefined;
  for (const one of splitStatements(sql)) {
    const verb = statementVerb(one);
    const words = codeWords(one);
    const own = READS.has(verb) ? 'read' : ROOM.has(verb) ? 'room' : SESSION.has(verb) ? 'free' : 'grow';
    if (own === 'grow' || writes(words)) return 'grow';
    // Several statements in one text: a read beside anything else is held to the stricter rule.
    if (mode === undefined || mode === 'free') mode = own;
    else if (own !== mode && own !== 'free') mode = 'room';
  }
  return mode ?? 'free';
}

/**
 * The statements as they may run now: unchanged while the disk has room; in its reserve, each
 * marked for how the engine must run it (Statement.reserve), or all refused (ERR_BACKEND_UNAVAILABLE)
 * if one would grow the database. `grows`: they may still grow it as they run (they were let in
 * while the disk had room): a single INSERT … SELECT can write gigabytes, so the provider
 * watches the disk while such a call runs and stops its engine at the reserve.
 */
export function admitSql(
  dataDir: string,
  statements: readonly Statement[],
): { statements: Statement[]; grows: boolean } {
  const plain = statements.map(({ reserve: _, ...s }) => s);
  const modes = plain.map((s) => reserveMode(s.sql));
  if (modes.every((m) => m === 'free')) return { statements: plain, grows: false };
  try {
    checkDiskRoom(dataDir, 0, 'The embedded database');
    return { statements: plain, grows: true };
  } catch (err) {
    if (modes.includes('grow')) throw err;
    return {
      statements: plain.map((s, i) =>
        modes[i] === 'free' ? s : { ...s, reserve: modes[i] as 'read' | 'room' },
      ),
      grows: false,
    };
  }
}
