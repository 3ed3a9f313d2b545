/**
 * Each function's log: console output of its instances plus platform notes (cold starts, crashes),
 * kept as JSON lines in the data folder and in a ring in memory (outside the JavaScript heap:
 * line-ring.ts), and streamed to followers.
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { scopedKey } from '../bindings/identity.js';
import { KylixError } from '../errors.js';
import type { LogEntry } from '../resources/api-types.js';
import { isDnsLabel } from '../resources/meta.js';
import { LineBatch, LineRing } from './line-ring.js';

/** Lines kept in memory per function… */
const RING = 1000;
/** …in at most this many bytes. */
const RING_BYTES = 512 * 1024;
/** How long lines wait to be written, at most. */
const FLUSH_MS = 50;
/** A log file is rotated (to .1) past this size. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

type Follower = (entry: LogEntry) => void;

/** Where a fleet's nodes share their function logs (shared-logs.ts: a PostgreSQL table). */
export interface LogShare {
  /** This node's name on the lines it shares. */
  readonly node: string;
  /** Queues a line for the other nodes; never waits. */
  write(namespace: string, fn: string, entry: LogEntry): void;
  tail(namespace: string, fn: string, n: number, filter?: LogFilter): Promise<LogEntry[]>;
  follow(
    namespace: string,
    fn: string,
    n: number,
    filter: LogFilter,
    onEntry: (e: LogEntry) => void,
    onError: (err: Error) => void,
  ): () => void;
  close(): Promise<void>;
}

/** Which entries a reader wants: newer than a time, at least a level, of one revision. */
export interface LogFilter {
  /** Epoch milliseconds: only entries written at or after it. */
  since?: number;
  /** The lowest level shown: debug < info (and console.log's "log") < warn < error. */
  level?: string;
  revision?: number;
}

/** Levels by severity; console.log's "log" counts as info. */
const LEVEL_RANK: Record<string, number> = { debug: 0, log: 1, info: 1, warn: 2, error: 3 };

/** The levels a filter may name. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Whether an entry passes a filter. */
export function matchesLog(e: LogEntry, f: LogFilter): boolean {
  if (f.revision !== undefined && e.revision !== f.revision) return false;
  if (f.level !== undefined && (LEVEL_RANK[e.level] ?? 1) < (LEVEL_RANK[f.level] ?? 0)) return false;
  if (f.since !== undefined && !(Date.parse(e.time) >= f.since)) return false;
  return true;
}

/** See the file comment. */
export class LogStore {
  private readonly rings = new Map<string, LineRing>();
  private readonly followers = new Map<string, Set<Follower>>();
  /** Followers of every function's log (the `kylix dev` terminal). */
  private readonly everyLog = new Set<(namespace: string, fn: string, entry: LogEntry) => void>();
  /** Open append streams and their sizes; writes are buffered, never on the request's critical path. */
  private readonly files = new Map<string, { stream: WriteStream; bytes: number }>();
  /** Lines not yet written, per function. */
  private readonly pending = new Map<string, { namespace: string; fn: string; lines: LineBatch }>();
  private flushTimer?: NodeJS.Timeout;

  constructor(
    private readonly dir: string,
    /** On a fleet, where every node's lines meet: reads then show them all. */
    private readonly shared?: LogShare,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The log file; names are DNS labels (checked, as they become a file name), so "." keeps them apart. */
  private file(namespace: string, fn: string): string {
    if (!isDnsLabel(namespace) || !isDnsLabel(fn))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        'A function log is named by a namespace and a name that are DNS labels.',
      );
    return join(this.dir, `${namespace}.${fn}.log`);
  }

  /**
   * Appends one entry to a function's log and hands it to its followers. `json` is the entry as
   * JSON when the caller has it already (the gateway writes one per request, by a template).
   */
  append(namespace: string, fn: string, entry: LogEntry, json?: string): void {
    const key = scopedKey(namespace, fn);
    const line = json ?? JSON.stringify(entry);
    this.ring(namespace, fn).push(line);
    this.queueLine(key, namespace, fn, line);
    this.shared?.write(namespace, fn, entry);
    for (const f of this.followers.get(key) ?? []) f(entry);
    for (const f of this.everyLog) f(namespace, fn, entry);
  }

  /** Calls `follower` for every new entry of every function until the returned function is called. */
  followAll(follower: (namespace: string, fn: string, entry: LogEntry) => void): () => void {
    this.everyLog.add(follower);
    return () => this.everyLog.delete(follower);
  }

  /** The last `n` lines for a reader: every node's on a fleet (merged by time), else this node's. */
  async read(namespace: string, fn: string, n = 100, filter?: LogFilter): Promise<LogEntry[]> {
    this.file(namespace, fn);
    if (this.shared) return this.shared.tail(namespace, fn, n, filter);
    return this.tail(namespace, fn, n, filter);
  }

  /**
   * The last `n` lines, then each new one, for a reader (every node's on a fleet) until the
   * returned function is called; `onError` is told when the shared log cannot be read.
   */
  subscribe(
    namespace: string,
    fn: string,
    n: number,
    filter: LogFilter | undefined,
    onEntry: (e: LogEntry) => void,
    onError: (err: Error) => void,
  ): () => void {
    this.file(namespace, fn);
    if (this.shared) return this.shared.follow(namespace, fn, n, filter ?? {}, onEntry, onError);
    for (const e of this.tail(namespace, fn, n, filter)) onEntry(e);
    return this.follow(namespace, fn, (e) => {
      if (!filter || matchesLog(e, filter)) onEntry(e);
    });
  }

  /**
   * Queues a line for its file. Lines are written in batches (every FLUSH_MS, one write per file),
   * so a busy function's invocation records cost one write per batch instead of one per request.
   */
  private queueLine(key: string, namespace: string, fn: string, line: string): void {
    let batch = this.pending.get(key);
    if (!batch) {
      batch = { namespace, fn, lines: new LineBatch() };
      this.pending.set(key, batch);
    }
    batch.lines.push(line);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  /** Writes every queued line. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batches = [...this.pending.values()];
    this.pending.clear();
    for (const b of batches) this.write(b.namespace, b.fn, b.lines.take());
  }

  /** Closes the files (pending lines are flushed). */
  async close(): Promise<void> {
    this.flush();
    await this.shared?.close();
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((f) => new Promise((r) => f.stream.end(r))));
  }

  /** Appends lines, rotating the file to .1 once it is past MAX_FILE_BYTES. Best effort: a full disk must not fail requests. */
  private write(namespace: string, fn: string, lines: Buffer): void {
    const path = this.file(namespace, fn);
    let f = this.files.get(path);
    if (f && f.bytes > MAX_FILE_BYTES) {
      f.stream.end();
      this.files.delete(path);
      try {
        renameSync(path, `${path}.1`);
      } catch {
        // rotation is best effort
      }
      f = undefined;
    }
    if (!f) {
      const bytes = existsSync(path) ? statSync(path).size : 0;
      const stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
      stream.on('error', () => this.files.delete(path));
      f = { stream, bytes };
      this.files.set(path, f);
    }
    f.bytes += lines.length;
    f.stream.write(lines);
  }

  /** The last `n` entries of a function's log (of those that pass `filter`, when given). */
  tail(namespace: string, fn: string, n = 100, filter?: LogFilter): LogEntry[] {
    const take = Math.min(Math.max(0, n), RING);
    const out: LogEntry[] = [];
    // Reading the log of a function that never logged makes no ring (a reader could name any).
    if (take === 0 || (!this.rings.has(scopedKey(namespace, fn)) && !existsSync(this.file(namespace, fn))))
      return out;
    this.ring(namespace, fn).newestFirst((line) => {
      try {
        const e = JSON.parse(line) as LogEntry;
        if (!filter || matchesLog(e, filter)) out.push(e);
      } catch {
        // a torn line read back from the file after a crash
      }
      return out.length < take;
    });
    return out.reverse();
  }

  /** Calls `follower` for every new entry until the returned function is called. */
  follow(namespace: string, fn: string, follower: Follower): () => void {
    const key = scopedKey(namespace, fn);
    let set = this.followers.get(key);
    if (!set) {
      set = new Set();
      this.followers.set(key, set);
    }
    set.add(follower);
    return () => set.delete(follower);
  }

  /** The in-memory ring, loaded from the file after a restart. */
  private ring(namespace: string, fn: string): LineRing {
    const key = scopedKey(namespace, fn);
    let ring = this.rings.get(key);
    if (!ring) {
      ring = new LineRing(RING, RING_BYTES);
      const file = this.file(namespace, fn);
      if (existsSync(file)) {
        const lines = readFileSync(file, 'utf8')
          .split('\n')
          .slice(-RING - 1);
        for (const line of lines) if (line) ring.push(line);
      }
      this.rings.set(key, ring);
    }
    return ring;
  }
}

/** The filter a log request's query asks for (sinceTime RFC 3339, level, revision), or undefined for none. */
export function logFilterOf(
  sinceTime: string | undefined,
  level: string | undefined,
  revision: string | undefined,
): LogFilter | undefined {
  const f: LogFilter = {};
  if (sinceTime !== undefined) {
    const t = Date.parse(sinceTime);
    if (!Number.isFinite(t))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        'sinceTime must be an RFC 3339 time, such as 2026-01-02T15:04:05Z.',
      );
    f.since = t;
  }
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level))
      throw new KylixError('ERR_BAD_REQUEST', `level must be one of ${LOG_LEVELS.join(', ')}.`);
    f.level = level;
  }
  if (revision !== undefined) {
    const n = Number(revision);
    if (!Number.isInteger(n) || n < 1)
      throw new KylixError('ERR_BAD_REQUEST', 'revision must be a revision number (1, 2, …).');
    f.revision = n;
  }
  return Object.keys(f).length ? f : undefined;
}
