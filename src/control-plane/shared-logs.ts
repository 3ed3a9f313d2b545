/**
 * Function logs shared by the nodes of a fleet, in a bounded table of the installation's PostgreSQL
 * schema, so `kylix logs NAME` on any node shows every node's lines merged by time.
 *
 * - Writes never wait: each line is queued in memory and written in batches (one INSERT of up to
 *   BATCH_ROWS rows every FLUSH_MS, one batch at a time), off the request path. When PostgreSQL
 *   falls behind, at most MAX_BACKLOG lines wait; older ones are dropped and the next batch says
 *   how many (a platform line in the function's log).
 * - The table is bounded: after writing, a node trims the functions it wrote to their newest
 *   KEEP_PER_FUNCTION lines, and every few minutes removes lines older than RETENTION_MS.
 * - Reads filter in SQL (function, time, level, revision) and merge by each line's time.
 * - Following polls for new rows every POLL_MS. Row ids come from a sequence, so a batch that
 *   commits late can carry ids below ones already seen: each poll looks back to the highest id seen
 *   LOOKBACK_MS ago and skips ids it has already sent.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Pool } from 'pg';
import type { Installation } from '../config/installation.js';
import { KylixError } from '../errors.js';
import type { LogEntry } from '../resources/api-types.js';
import { guardPool } from '../storage/pg-errors.js';
import { type LogFilter, matchesLog } from './logs.js';

const FLUSH_MS = 250;
const BATCH_ROWS = 1000;
const MAX_BACKLOG = 20_000;
/** Lines kept per function in the shared table (the newest). */
export const KEEP_PER_FUNCTION = 10_000;
/** Lines older than this are removed. */
const RETENTION_MS = 7 * 86_400_000;
const POLL_MS = 500;
const LOOKBACK_MS = 3000;

/** Severity as stored (console.log's "log" is info), so --level filters in SQL. */
const RANK: Record<string, number> = { debug: 0, log: 1, info: 1, warn: 2, error: 3 };

/**
 * Where a fleet's nodes share their function logs, if anywhere: the state store's PostgreSQL
 * (its schema); with the kubernetes state backend, the Database backend's PostgreSQL, in a schema
 * named after the installation's namespace (`kylix_<namespace>`, `-` as `_`), so installations
 * that share one PostgreSQL keep their logs apart. Otherwise undefined: each node keeps its own.
 */
export function sharedLogsPlace(installation: Installation): { url: string; schema: string } | undefined {
  const { state, database } = installation.backends;
  if (state.provider === 'postgres') return { url: state.url, schema: state.schema };
  if (state.provider === 'kubernetes' && database.provider === 'postgres') {
    const schema = `kylix_${state.namespace.replaceAll('-', '_')}`;
    // A namespace is at most 63 characters, an identifier too: a long one is cut and made unique.
    return {
      url: database.url,
      schema:
        schema.length <= 63
          ? schema
          : `${schema.slice(0, 54)}_${createHash('sha256').update(schema).digest('hex').slice(0, 8)}`,
    };
  }
  return undefined;
}

/** A line as the table returns it. */
interface Row {
  id: string;
  entry: LogEntry;
}

/** Where a fleet's function logs meet; see the file comment. */
export class SharedLogs {
  /** This node's name on its lines (KYLIX_NODE_NAME, else the host name and a random suffix). */
  readonly node: string;
  private readonly table: string;
  private pending: { namespace: string; fn: string; entry: LogEntry }[] = [];
  private dropped = new Map<string, number>();
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private readonly trimTimer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly pool: Pool,
    schema: string,
    node: string,
  ) {
    this.table = `"${schema}"."function_logs"`;
    this.node = node;
    this.trimTimer = setInterval(() => void this.expire().catch(() => undefined), 5 * 60_000);
    this.trimTimer.unref();
  }

  /** Connects (the pg driver is imported only now) and creates the table once per installation. */
  static async open(options: { url: string; schema?: string; node?: string }): Promise<SharedLogs> {
    const pg = ((await import('pg')) as unknown as { default: typeof import('pg') }).default;
    const schema = options.schema ?? 'kylix';
    const pool = new pg.Pool({ connectionString: options.url, max: 3, query_timeout: 30_000 });
    guardPool(pool);
    const suffix = Math.random().toString(16).slice(2, 6);
    const logs = new SharedLogs(
      pool,
      schema,
      options.node ?? process.env.KYLIX_NODE_NAME ?? `${hostname()}-${suffix}`,
    );
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [`${schema}.function_logs`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${logs.table} (
        id bigserial PRIMARY KEY,
        namespace text NOT NULL,
        function text NOT NULL,
        time timestamptz NOT NULL,
        level smallint NOT NULL,
        revision int,
        entry json NOT NULL)`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS function_logs_by_time ON ${logs.table} (namespace, function, time)`,
      );
      await client.query(
        `CREATE INDEX IF NOT EXISTS function_logs_by_id ON ${logs.table} (namespace, function, id)`,
      );
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new KylixError(
        'ERR_BACKEND_UNAVAILABLE',
        `The shared function log (PostgreSQL) could not be set up: ${(err as Error).message}.`,
      );
    } finally {
      await client
        .query('SELECT pg_advisory_unlock(hashtext($1))', [`${schema}.function_logs`])
        .catch(() => {});
      client.release();
    }
    return logs;
  }

  /** Queues a line for the table (never waits; see the file comment). */
  write(namespace: string, fn: string, entry: LogEntry): void {
    if (this.closed) return;
    this.pending.push({ namespace, fn, entry: { ...entry, node: this.node } });
    if (this.pending.length > MAX_BACKLOG) {
      const over = this.pending.splice(0, this.pending.length - MAX_BACKLOG);
      for (const o of over) {
        const key = `${o.namespace}/${o.fn}`;
        this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
      }
    }
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Writes what is queued (resolves once it is in the table, or failed). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0 && this.dropped.size === 0) return;
    this.flushing = this.writeBatches().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async writeBatches(): Promise<void> {
    for (const [key, n] of this.dropped) {
      const [namespace = '', fn = ''] = key.split('/');
      this.pending.unshift({
        namespace,
        fn,
        entry: {
          time: new Date().toISOString(),
          level: 'warn',
          message: `${n} log line(s) of this node were not shared with the fleet: the shared log fell behind.`,
          source: 'platform',
          node: this.node,
        },
      });
    }
    this.dropped.clear();
    const written = new Set<string>();
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, BATCH_ROWS);
      try {
        await this.pool.query(
          `INSERT INTO ${this.table} (namespace, function, time, level, revision, entry)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::smallint[], $5::int[], $6::json[])`,
          [
            batch.map((b) => b.namespace),
            batch.map((b) => b.fn),
            batch.map((b) =>
              Number.isFinite(Date.parse(b.entry.time)) ? b.entry.time : new Date().toISOString(),
            ),
            batch.map((b) => RANK[b.entry.level] ?? 1),
            batch.map((b) => b.entry.revision ?? null),
            batch.map((b) => JSON.stringify(b.entry)),
          ],
        );
        for (const b of batch) written.add(`${b.namespace}/${b.fn}`);
      } catch {
        // PostgreSQL is unreachable: these lines stay in this node's own log only.
        for (const b of batch) {
          const key = `${b.namespace}/${b.fn}`;
          this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
        }
        break;
      }
    }
    await Promise.all([...written].map((key) => this.trim(key))).catch(() => undefined);
  }

  /** Keeps a function's newest KEEP_PER_FUNCTION lines (an index range scan, not a table scan). */
  private async trim(key: string): Promise<void> {
    const slash = key.indexOf('/');
    await this.pool.query(
      `DELETE FROM ${this.table} WHERE namespace = $1 AND function = $2 AND id <= (
         SELECT id FROM ${this.table} WHERE namespace = $1 AND function = $2
         ORDER BY id DESC OFFSET $3 LIMIT 1)`,
      [key.slice(0, slash), key.slice(slash + 1), KEEP_PER_FUNCTION],
    );
  }

  /** Removes lines past the retention. */
  private async expire(): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.table} WHERE time < $1`, [
      new Date(Date.now() - RETENTION_MS).toISOString(),
    ]);
  }

  /** The last `n` lines of a function over every node (those that pass `filter`), oldest first. */
  async tail(namespace: string, fn: string, n: number, filter: LogFilter = {}): Promise<LogEntry[]> {
    await this.flush();
    return (await this.select(namespace, fn, n, filter)).map((r) => r.entry);
  }

  private async select(namespace: string, fn: string, n: number, filter: LogFilter): Promise<Row[]> {
    const where = ['namespace = $1', 'function = $2'];
    const args: unknown[] = [namespace, fn];
    if (filter.since !== undefined) {
      args.push(new Date(filter.since).toISOString());
      where.push(`time >= $${args.length}`);
    }
    if (filter.level !== undefined) {
      args.push(RANK[filter.level] ?? 0);
      where.push(`level >= $${args.length}`);
    }
    if (filter.revision !== undefined) {
      args.push(filter.revision);
      where.push(`revision = $${args.length}`);
    }
    args.push(Math.min(Math.max(0, n), KEEP_PER_FUNCTION));
    const { rows } = await this.pool.query<Row>(
      `SELECT id, entry FROM ${this.table} WHERE ${where.join(' AND ')}
       ORDER BY time DESC, id DESC LIMIT $${args.length}`,
      args,
    );
    return rows.reverse();
  }

  /**
   * Calls `onEntry` for each new line of the function from any node (after the last `n` that pass
   * the filter, which come first), until the returned function is called.
   */
  follow(
    namespace: string,
    fn: string,
    n: number,
    filter: LogFilter,
    onEntry: (e: LogEntry) => void,
    onError: (err: Error) => void,
  ): () => void {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const sent = new Set<string>();
    /** The highest id seen, per poll, so each poll can look LOOKBACK_MS back. */
    const marks: { at: number; id: bigint }[] = [];
    let high = 0n;
    const poll = async (): Promise<void> => {
      const now = Date.now();
      while (marks.length > 1 && (marks[1] as { at: number }).at <= now - LOOKBACK_MS) marks.shift();
      const floor = marks[0]?.id ?? high;
      const { rows } = await this.pool.query<Row>(
        `SELECT id, entry FROM ${this.table} WHERE namespace = $1 AND function = $2 AND id > $3
         ORDER BY id LIMIT 5000`,
        [namespace, fn, floor.toString()],
      );
      for (const r of rows) {
        const id = BigInt(r.id);
        if (id > high) high = id;
        if (sent.has(r.id)) continue;
        sent.add(r.id);
        if (matchesLog(r.entry, filter)) onEntry(r.entry);
      }
      for (const id of sent) if (BigInt(id) <= floor) sent.delete(id);
      marks.push({ at: now, id: high });
    };
    const loop = async () => {
      try {
        await this.flush();
        // Every id up to the newest row now is sent next (the tail) or not wanted; later ones are polled.
        const { rows } = await this.pool.query<{ max: string | null }>(
          `SELECT max(id) AS max FROM ${this.table} WHERE namespace = $1 AND function = $2`,
          [namespace, fn],
        );
        high = BigInt(rows[0]?.max ?? 0);
        marks.push({ at: Date.now(), id: high });
        for (const r of await this.select(namespace, fn, n, filter)) {
          sent.add(r.id);
          onEntry(r.entry);
        }
        while (!stopped) {
          await new Promise<void>((r) => {
            timer = setTimeout(r, POLL_MS);
          });
          if (!stopped) await poll();
        }
      } catch (err) {
        if (!stopped) onError(err as Error);
      }
    };
    void loop();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  /** Writes what is queued and disconnects. */
  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    this.closed = true;
    clearInterval(this.trimTimer);
    await this.pool.end().catch(() => undefined);
  }
}
