/**
 * The statements an embedded Database refuses. PGlite has one user, a superuser, and no way to
 * drop that privilege for good (its session user can always SET ROLE back), so the statements
 * that reach past the Database's own tables — files, programs, the loader, roles, other
 * databases, server settings — are refused before they run, with a clear error.
 *
 * This is a second wall, not the first: each Database has its own PGlite (other Databases are
 * unreachable whatever runs), the worker refuses to load code from anywhere but PGlite's own
 * libraries, and a statement that wedges the engine is stopped by terminating its worker. SQL
 * built at run time (PL/pgSQL EXECUTE) is not seen here; it meets those walls instead.
 */
import { SqlError } from './common.js';

type Token = { kind: 'word' | 'ident' | 'string' | 'body' | 'punct'; text: string };

/** Extensions a tenant may create (the ones PGlite carries without loading code). */
const ALLOWED_EXTENSIONS = new Set(['plpgsql']);

/**
 * Functions that read or write the server's files, signal backends or reach other servers; and
 * those that write or keep WAL outside any table (a new 16 MiB segment per pg_switch_wal(), a
 * logical message of any size, a replication slot that keeps every segment from then on): they
 * fill the node's disk from a plain SELECT, which even a read-only transaction lets run.
 */
const FORBIDDEN_FUNCTIONS =
  /^(pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|pg_file_\w+|lo_import|lo_export|pg_reload_conf|pg_terminate_backend|pg_cancel_backend|pg_signal_backend|pg_rotate_logfile|pg_promote|dblink\w*|pg_switch_wal|pg_switch_xlog|pg_logical_emit_message|pg_create_restore_point|pg_(start|stop)_backup|pg_backup_(start|stop)|pg_\w*replication_slot\w*|pg_replication_origin_\w+|pg_log_backend_memory_contexts)$/;

/** Splits SQL into tokens, skipping comments; strings and dollar-quoted bodies are single tokens. */
function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') depth++;
        else if (sql[i] === '*' && sql[i + 1] === '/') depth--;
        else {
          i++;
          continue;
        }
        i += 2;
      }
    } else if (c === "'") {
      // E'…' strings take backslash escapes; the E was read as a word just before.
      const prev = out.at(-1);
      const escapes = prev?.kind === 'word' && prev.text === 'e' && sql[i - 1]?.toLowerCase() === 'e';
      if (escapes) out.pop();
      let text = '';
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') {
          text += sql[i + 1] ?? '';
          i += 2;
        } else if (sql[i] === "'" && sql[i + 1] === "'") {
          text += "'";
          i += 2;
        } else if (sql[i] === "'") {
          i++;
          break;
        } else text += sql[i++];
      }
      out.push({ kind: 'string', text });
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') {
          text += '"';
          i += 2;
        } else if (sql[i] === '"') {
          i++;
          break;
        } else text += sql[i++];
      }
      out.push({ kind: 'ident', text });
    } else if (c === '$' && /[A-Za-z_$]/.test(sql[i + 1] ?? '')) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (!m) {
        out.push({ kind: 'punct', text: c });
        i++;
        continue;
      }
      const end = sql.indexOf(m[0], i + m[0].length);
      const stop = end < 0 ? n : end;
      out.push({ kind: 'body', text: sql.slice(i + m[0].length, stop) });
      i = end < 0 ? n : end + m[0].length;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j]!)) j++;
      out.push({ kind: 'word', text: sql.slice(i, j).toLowerCase() });
      i = j;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

function refuse(what: string, why: string): never {
  throw new SqlError(`${what} is not allowed in an embedded Database: ${why}`, '42501');
}

/** Throws a SqlError (SQLSTATE 42501) if `sql` holds a statement an embedded Database refuses. */
export function checkEmbeddedSql(sql: string, depth = 0): void {
  const tokens = tokenize(sql);
  const word = (k: number) => {
    const t = tokens[k];
    return t?.kind === 'word' ? t.text : undefined;
  };
  let start = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === 'punct' && t.text === ';') {
      start = k + 1;
      continue;
    }
    const first = k === start || depth > 0;
    const w = word(k);
    const name = t.kind === 'word' || t.kind === 'ident' ? t.text : undefined;
    if (name && tokens[k + 1]?.text === '(' && FORBIDDEN_FUNCTIONS.test(name.toLowerCase()))
      refuse(`${name}()`, 'it reaches the server’s files, processes or other servers');
    if (name === 'set_config' && tokens[k + 1]?.text === '(') {
      const arg = tokens[k + 2];
      if (arg?.kind !== 'string' || /^(role|session_authorization)$/i.test(arg.text))
        refuse('set_config() of the role', 'a Database’s SQL always runs as its own user');
    }
    if (w === 'copy' && first) {
      for (let j = k + 1; j < tokens.length && tokens[j]!.text !== ';'; j++) {
        const to = word(j);
        if ((to === 'to' || to === 'from') && (word(j + 1) === 'program' || tokens[j + 1]?.kind === 'string'))
          refuse('COPY to or from a file or program', 'use INSERT and SELECT to move data');
      }
    }
    if (first && (w === 'listen' || w === 'load' || w === 'checkpoint'))
      refuse(w.toUpperCase(), 'a call’s session ends with the call');
    if (w === 'set' || w === 'reset') {
      let j = k + 1;
      if (word(j) === 'session' || word(j) === 'local') j++;
      if (word(j) === 'role' || word(j) === 'authorization' || word(j) === 'session_authorization')
        refuse(
          `${w.toUpperCase()} ROLE / SESSION AUTHORIZATION`,
          'a Database’s SQL always runs as its own user',
        );
    }
    if (w === 'alter' && word(k + 1) === 'system') refuse('ALTER SYSTEM', 'server settings are not yours');
    if (w === 'discard' && first) refuse('DISCARD', 'Kylix resets the session after every call itself');
    if ((w === 'create' || w === 'alter' || w === 'drop') && first) {
      let j = k + 1;
      if (word(j) === 'or' && word(j + 1) === 'replace') j += 2;
      const what = word(j);
      if (what && /^(role|user|group|database|tablespace|server|subscription|publication)$/.test(what))
        refuse(`${w.toUpperCase()} ${what.toUpperCase()}`, 'a Database is one database with one user');
      if (w === 'create' && what === 'extension') {
        let e = j + 1;
        if (word(e) === 'if' && word(e + 1) === 'not' && word(e + 2) === 'exists') e += 3;
        const ext = tokens[e]?.text.toLowerCase() ?? '';
        if (!ALLOWED_EXTENSIONS.has(ext))
          refuse(
            `CREATE EXTENSION ${ext}`,
            `the extensions available are ${[...ALLOWED_EXTENSIONS].join(', ')}`,
          );
      }
    }
    if (w === 'language') {
      const lang = tokens[k + 1]?.text.toLowerCase();
      if (lang === 'c' || lang === 'internal')
        refuse(`LANGUAGE ${lang.toUpperCase()}`, 'functions are written in SQL or PL/pgSQL');
    }
    // Function bodies and DO blocks hold SQL too: look inside them (a few levels deep).
    if ((t.kind === 'body' || t.kind === 'string') && depth < 3 && isCodeBody(tokens, k))
      checkEmbeddedSql(t.text, depth + 1);
  }
}

/** Whether the string at k is code: a DO block or the body of CREATE FUNCTION/PROCEDURE. */
function isCodeBody(tokens: Token[], k: number): boolean {
  if (tokens[k]!.kind === 'body') return true;
  const prev = tokens[k - 1];
  return prev?.kind === 'word' && (prev.text === 'do' || prev.text === 'as');
}
