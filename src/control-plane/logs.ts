/**
 * Each function's log: console output of its instances plus platform notes (cold starts, crashes),
 * kept as JSON lines in the data folder and in a ring in memory, and streamed to followers.
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
import type { LogEntry } from '../resources/api-types.js';

/** Lines kept in memory per function. */
const RING = 1000;
/** A log file is rotated (to .1) past this size. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

type Follower = (entry: LogEntry) => void;

/** See the file comment. */
export class LogStore {
  private readonly rings = new Map<string, LogEntry[]>();
  private readonly followers = new Map<string, Set<Follower>>();
  /** Open append streams and their sizes; writes are buffered, never on the request's critical path. */
  private readonly files = new Map<string, { stream: WriteStream; bytes: number }>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(namespace: string, fn: string): string {
    return join(this.dir, `${namespace}.${fn}.log`);
  }

  /** Appends one entry to a function's log and hands it to its followers. */
  append(namespace: string, fn: string, entry: LogEntry): void {
    const key = `${namespace}/${fn}`;
    const ring = this.ring(namespace, fn);
    ring.push(entry);
    if (ring.length > RING) ring.splice(0, ring.length - RING);
    this.write(namespace, fn, `${JSON.stringify(entry)}\n`);
    for (const f of this.followers.get(key) ?? []) f(entry);
  }

  /** Closes the files (pending lines are flushed). */
  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((f) => new Promise((r) => f.stream.end(r))));
  }

  /** Appends a line, rotating the file to .1 once it is past MAX_FILE_BYTES. Best effort: a full disk must not fail requests. */
  private write(namespace: string, fn: string, line: string): void {
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
    f.bytes += line.length;
    f.stream.write(line);
  }

  /** The last `n` entries of a function's log. */
  tail(namespace: string, fn: string, n = 100): LogEntry[] {
    const ring = this.ring(namespace, fn);
    return ring.slice(Math.max(0, ring.length - n));
  }

  /** Calls `follower` for every new entry until the returned function is called. */
  follow(namespace: string, fn: string, follower: Follower): () => void {
    const key = `${namespace}/${fn}`;
    let set = this.followers.get(key);
    if (!set) {
      set = new Set();
      this.followers.set(key, set);
    }
    set.add(follower);
    return () => set.delete(follower);
  }

  /** The in-memory ring, loaded from the file after a restart. */
  private ring(namespace: string, fn: string): LogEntry[] {
    const key = `${namespace}/${fn}`;
    let ring = this.rings.get(key);
    if (!ring) {
      ring = [];
      const file = this.file(namespace, fn);
      if (existsSync(file)) {
        const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-RING);
        for (const l of lines) {
          try {
            ring.push(JSON.parse(l) as LogEntry);
          } catch {
            // a torn last line after a crash
          }
        }
      }
      this.rings.set(key, ring);
    }
    return ring;
  }
}
