/**
 * The audit log: one entry per mutation (and per invocation) through the control API, with who,
 * what, when and the HTTP status, never a request body or a secret value. Embedded, it is an
 * append-only JSON-lines file in the data folder, fsynced before the answer goes out; on a fleet it
 * is a table in the PostgreSQL state schema (audit-postgres.ts), so every node writes to and reads
 * from one log.
 */
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KylixError } from '../../errors.js';
import type { AuditEntry } from '../../resources/access.js';

/** Which entries a query wants: newer than `since`, of one namespace, the newest `limit`. */
export interface AuditQuery {
  since?: Date;
  namespace?: string;
  limit: number;
}

/** Where audit entries go; both backends implement it. */
export interface AuditLog {
  /** Resolves once the entry is durable. */
  append(entry: AuditEntry): Promise<void>;
  /** Matching entries, oldest first. */
  query(q: AuditQuery): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

/** The most entries one query returns. */
export const AUDIT_MAX_LIMIT = 10_000;

/**
 * Parses the query parameters of GET /audit: `since` as an RFC 3339 time or a duration back from
 * now ("90s", "15m", "1h", "7d"), `namespace`, `limit` (default 500).
 */
export function auditQuery(params: URLSearchParams, now = Date.now()): AuditQuery {
  const q: AuditQuery = { limit: 500 };
  const since = params.get('since');
  if (since) {
    const d = /^(\d+)(s|m|h|d)$/.exec(since);
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };
    const at = d ? now - Number(d[1]) * unit[d[2] as keyof typeof unit] : Date.parse(since);
    if (!Number.isFinite(at))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        'since must be an RFC 3339 time (2025-01-31T12:00:00Z) or a duration such as 30m, 1h or 7d.',
      );
    q.since = new Date(at);
  }
  const ns = params.get('namespace');
  if (ns) q.namespace = ns;
  const limit = params.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > AUDIT_MAX_LIMIT)
      throw new KylixError('ERR_BAD_REQUEST', `limit must be a whole number from 1 to ${AUDIT_MAX_LIMIT}.`);
    q.limit = n;
  }
  return q;
}

/** Whether an entry matches a query's filters. */
export function auditMatches(e: AuditEntry, q: AuditQuery): boolean {
  return (
    (!q.since || Date.parse(e.time) >= q.since.getTime()) && (!q.namespace || e.namespace === q.namespace)
  );
}

/** The embedded audit log: `<data>/audit/audit.jsonl`; entries that arrive together share one fsync. */
export class FileAuditLog implements AuditLog {
  private pending: { line: string; done: () => void; fail: (e: unknown) => void }[] = [];
  private flushing?: Promise<void>;

  private constructor(
    private readonly path: string,
    private handle: FileHandle | undefined,
  ) {}

  /** Opens (or creates, mode 0600) the log under `dir`. */
  static async open(dir: string): Promise<FileAuditLog> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, 'audit.jsonl');
    return new FileAuditLog(path, await open(path, 'a', 0o600));
  }

  append(entry: AuditEntry): Promise<void> {
    return new Promise((done, fail) => {
      this.pending.push({ line: `${JSON.stringify(entry)}\n`, done, fail });
      void this.flush();
    });
  }

  /** 1. takes what is pending, 2. writes it in one go, 3. fsyncs, 4. answers those appends. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      await null; // so the reset below always follows this assignment
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          if (!this.handle) throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The audit log is closed.');
          await this.handle.write(batch.map((b) => b.line).join(''));
          await this.handle.datasync();
          for (const b of batch) b.done();
        } catch (err) {
          for (const b of batch) b.fail(err);
        }
      }
      // Reset in the same turn as the last check, so an append cannot slip in between.
      this.flushing = undefined;
    })();
    return this.flushing;
  }

  async query(q: AuditQuery): Promise<AuditEntry[]> {
    await this.flushing;
    if (!existsSync(this.path)) return [];
    const out: AuditEntry[] = [];
    const lines = createInterface({ input: createReadStream(this.path, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      let e: AuditEntry;
      try {
        e = JSON.parse(line) as AuditEntry;
      } catch {
        continue; // a torn last line after a crash
      }
      if (!auditMatches(e, q)) continue;
      out.push(e);
      if (out.length > q.limit * 2) out.splice(0, out.length - q.limit);
    }
    return out.slice(-q.limit);
  }

  async close(): Promise<void> {
    await this.flushing;
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
