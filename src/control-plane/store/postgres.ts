/**
 * The fleet state store: every node of an installation keeps its resources, revisions, status,
 * sealed secrets and function bundles in one PostgreSQL schema, so they all see the same
 * platform.
 *
 * Writes are serialised by one row (`meta.version`, bumped in every write transaction and
 * locked until it commits), so resourceVersions are handed out in commit order with no gaps.
 * Every write also appends its event to `events` and NOTIFYs the other nodes; each node reads
 * new events in order (on a notification, and every second in case one was missed) and hands
 * them to its watchers. A write resolves only after this node's watchers have seen it, as with
 * the embedded store. Reads go to PostgreSQL, so every node reads what was last committed.
 *
 * Objects are stored as `json`, not `jsonb`: jsonb reorders keys, and revisions are keyed by a
 * hash of the spec's JSON text. The `pg` driver is imported only when this store is opened.
 */
import type { Client, Pool, PoolClient } from 'pg';
import { KylixError } from '../../errors.js';
import type { KObject } from '../../resources/meta.js';
import { guardPool } from '../../storage/pg-errors.js';
import type { SharedBundles } from '../bundles.js';
import type { Precondition, Store, Watch, WatchEvent } from './interface.js';
import { byNamespaceAndName, checkPrecondition, notFound, WatchHistory } from './shared.js';

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** The schema holding Kylix's tables (default "kylix"); one installation per schema. */
  schema?: string;
  /** How many events watches may resume from (default 10,000). */
  history?: number;
}

type PgModule = typeof import('pg');

/** How often a node looks for events it was not notified of (a dropped LISTEN connection). */
const POLL_MS = 1000;

/** Connects, creates the schema if needed, and starts following changes. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const pg = ((await import('pg')) as unknown as { default: PgModule }).default;
  const schema = options.schema ?? 'kylix';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `The state store schema "${schema}" must be a lower-case PostgreSQL identifier (letters, digits, _).`,
    );
  const store = new PostgresStore(pg, options.url, schema, options.history ?? 10_000);
  try {
    await store.open();
  } catch (err) {
    await store.close();
    throw unavailable(options.url, err);
  }
  return store;
}

/** The error for a state store that cannot be reached, naming where it was looked for. */
function unavailable(url: string, err: unknown): KylixError {
  if (err instanceof KylixError) return err;
  const u = new URL(url);
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `The state store (PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}) failed: ${(err as Error).message}. Check that the server runs and the installation's state URL is right.`,
  );
}

/** The PostgreSQL store; see the file comment. */
export class PostgresStore implements Store, SharedBundles {
  readonly name = 'postgres';
  private readonly pool: Pool;
  private listener?: Client;
  private readonly channel: string;
  private readonly t: { meta: string; objects: string; events: string; bundles: string };
  /** One object by kind, namespace and name: a read, and the read inside each write. */
  private readonly selectObject: string;
  private readonly history: WatchHistory;
  private readonly listeners = new Set<{ since: number; deliver: (e: WatchEvent) => void }>();
  /** The newest event handed to watchers. */
  private delivered = 0;
  /** The running catch-up read, if any, and whether another must follow it. */
  private pumping?: Promise<void>;
  private pumpAgain = false;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly pg: PgModule,
    private readonly url: string,
    private readonly schema: string,
    private readonly historySize: number,
  ) {
    // A server that stops answering must fail writes (which are retried) rather than hang them.
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
    });
    // A connection that dies (a server restart) must not crash the node; the next query reconnects.
    guardPool(this.pool);
    this.history = new WatchHistory(historySize);
    const q = (table: string) => `"${schema}"."${table}"`;
    this.t = { meta: q('meta'), objects: q('objects'), events: q('events'), bundles: q('bundles') };
    this.selectObject = `SELECT object FROM ${this.t.objects} WHERE kind = $1 AND namespace = $2 AND name = $3`;
    this.channel = `${schema}_events`;
  }

  /** 1. create the tables (once per installation), 2. load recent history, 3. LISTEN. */
  async open(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Two nodes starting together must not both create the schema.
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [this.schema]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.t.meta} (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)`,
      );
      await client.query(`INSERT INTO ${this.t.meta} VALUES (1, 0) ON CONFLICT DO NOTHING`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.t.objects} (
        kind text NOT NULL, namespace text NOT NULL, name text NOT NULL,
        object json NOT NULL, PRIMARY KEY (kind, namespace, name))`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.t.events} (rv bigint PRIMARY KEY, type text NOT NULL, object json NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.t.bundles} (digest text PRIMARY KEY, code bytea NOT NULL)`,
      );
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [this.schema]).catch(() => {});
      client.release();
    }
    const recent = await this.pool.query<{ rv: string; type: WatchEvent['type']; object: KObject }>(
      `SELECT rv, type, object FROM ${this.t.events} ORDER BY rv DESC LIMIT $1`,
      [this.historySize],
    );
    for (const row of recent.rows.reverse())
      this.history.remember(Number(row.rv), { type: row.type, object: row.object });
    // From the newest event loaded; what was written since is read by the pump, so none is skipped.
    this.delivered = Number(recent.rows.at(-1)?.rv ?? 0);
    await this.listen();
    await this.pump();
    this.timer = setInterval(() => void this.pump().catch(() => {}), POLL_MS);
    this.timer.unref();
  }

  async currentVersion(): Promise<string> {
    const r = await this.query<{ version: string }>(`SELECT version FROM ${this.t.meta} WHERE id = 1`);
    return String(r.rows[0]?.version ?? 0);
  }

  async get(kind: string, namespace: string, name: string): Promise<KObject | undefined> {
    const r = await this.query<{ object: KObject }>(this.selectObject, [kind, namespace, name]);
    return r.rows[0]?.object;
  }

  async list(kind: string, namespace?: string): Promise<KObject[]> {
    const r =
      namespace === undefined
        ? await this.query<{ object: KObject }>(`SELECT object FROM ${this.t.objects} WHERE kind = $1`, [
            kind,
          ])
        : await this.query<{ object: KObject }>(
            `SELECT object FROM ${this.t.objects} WHERE kind = $1 AND namespace = $2`,
            [kind, namespace],
          );
    return r.rows.map((row) => row.object).sort(byNamespaceAndName);
  }

  async put(object: KObject, precondition: Precondition = {}): Promise<KObject> {
    const { kind } = object;
    const { namespace, name } = object.metadata;
    return this.write(kind, namespace, name, precondition, async (client, existing, rv) => {
      const next = structuredClone(object);
      next.metadata.resourceVersion = String(rv);
      await client.query(
        `INSERT INTO ${this.t.objects} (kind, namespace, name, object) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, namespace, name) DO UPDATE SET object = EXCLUDED.object`,
        [kind, namespace, name, JSON.stringify(next)],
      );
      return { type: existing ? 'MODIFIED' : 'ADDED', object: next };
    });
  }

  async delete(
    kind: string,
    namespace: string,
    name: string,
    precondition: Precondition = {},
  ): Promise<KObject> {
    return this.write(kind, namespace, name, precondition, async (client, existing, rv) => {
      if (!existing) throw notFound(kind, namespace, name);
      await client.query(`DELETE FROM ${this.t.objects} WHERE kind = $1 AND namespace = $2 AND name = $3`, [
        kind,
        namespace,
        name,
      ]);
      const gone = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(rv) } };
      return { type: 'DELETED', object: gone };
    });
  }

  watch(sinceVersion: string | undefined, listener: (event: WatchEvent) => void): Watch {
    // Events this node reads later but the caller has already seen are skipped by rv.
    const entry = { since: this.history.replay(sinceVersion, this.delivered, listener), deliver: listener };
    this.listeners.add(entry);
    return { close: () => this.listeners.delete(entry) };
  }

  /** Reads other nodes' events up to now and hands them to watchers; see Store.sync. */
  async sync(): Promise<void> {
    try {
      await this.pump();
    } catch (err) {
      throw unavailable(this.url, err);
    }
  }

  /** A bundle's bytes, if any node stored it. */
  async getBundle(digest: string): Promise<Buffer | undefined> {
    const r = await this.query<{ code: Buffer }>(`SELECT code FROM ${this.t.bundles} WHERE digest = $1`, [
      digest,
    ]);
    return r.rows[0]?.code;
  }

  /** Stores a bundle for every node (a no-op when it is there already). */
  async putBundle(digest: string, code: Buffer): Promise<void> {
    await this.query(`INSERT INTO ${this.t.bundles} (digest, code) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
      digest,
      code,
    ]);
  }

  /**
   * The events table keeps past versions of objects for watches; for Secrets that means old
   * ciphertext. After a re-seal, every Secret event but the one of its current version loses its
   * sealed values (a deleted Secret's, too), in this node's memory as well, and the tables are
   * vacuumed so the old row versions go. PostgreSQL's WAL and backups taken before still hold
   * them: see docs/operations.md. Watchers never see sealed values (the API strips them).
   */
  async compact(): Promise<void> {
    await this.query(
      `UPDATE ${this.t.events} e SET object = json_build_object(
         'apiVersion', e.object->'apiVersion', 'kind', e.object->'kind', 'metadata', e.object->'metadata',
         'spec', json_build_object(), 'status', e.object->'status')
       WHERE e.object->>'kind' = 'Secret' AND NOT EXISTS (
         SELECT 1 FROM ${this.t.objects} o
         WHERE o.kind = 'Secret'
           AND o.namespace = e.object->'metadata'->>'namespace'
           AND o.name = e.object->'metadata'->>'name'
           AND o.object->'metadata'->>'resourceVersion' = e.rv::text)`,
    );
    this.history.rewrite((e) =>
      e.object.kind === 'Secret' ? { ...e, object: { ...e.object, spec: {} } } : e,
    );
    await this.query(`VACUUM ${this.t.events}, ${this.t.objects}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.listeners.clear();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    await this.pumping?.catch(() => {});
    await this.pool.end().catch(() => {});
  }

  /**
   * One write transaction: 1. take the next version (locking the version row, which serialises
   * writers), 2. read the object and check the precondition, 3. change it, 4. record the event and
   * notify, 5. commit, 6. hand the event to this node's watchers.
   */
  private async write(
    kind: string,
    namespace: string,
    name: string,
    pre: Precondition,
    change: (client: PoolClient, existing: KObject | undefined, rv: number) => Promise<WatchEvent>,
  ): Promise<KObject> {
    const client = await this.connect();
    let event: WatchEvent;
    let rv: number;
    try {
      // The version row serialises writers only under READ COMMITTED, whatever the server's default.
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      const v = await client.query<{ version: string }>(
        `UPDATE ${this.t.meta} SET version = version + 1 WHERE id = 1 RETURNING version`,
      );
      rv = Number(v.rows[0]?.version);
      const found = await client.query<{ object: KObject }>(this.selectObject, [kind, namespace, name]);
      const existing = found.rows[0]?.object;
      checkPrecondition(kind, name, existing, pre);
      event = await change(client, existing, rv);
      await client.query(`INSERT INTO ${this.t.events} (rv, type, object) VALUES ($1, $2, $3)`, [
        rv,
        event.type,
        JSON.stringify(event.object),
      ]);
      if (rv % 1000 === 0)
        await client.query(`DELETE FROM ${this.t.events} WHERE rv <= $1`, [rv - this.historySize]);
      await client.query('SELECT pg_notify($1, $2)', [this.channel, String(rv)]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err instanceof KylixError ? err : unavailable(this.url, err);
    } finally {
      client.release();
    }
    await this.pump().catch(() => {});
    return structuredClone(event.object);
  }

  private async connect(): Promise<PoolClient> {
    if (this.closed)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The state store cannot write: it is closed');
    try {
      return await this.pool.connect();
    } catch (err) {
      throw unavailable(this.url, err);
    }
  }

  private async query<R extends object>(sql: string, params: unknown[] = []) {
    if (this.closed) throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The state store is closed');
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw unavailable(this.url, err);
    }
  }

  /** A dedicated connection LISTENs for other nodes' writes; it reconnects if it drops. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new this.pg.Client({ connectionString: this.url });
    client.on('notification', () => void this.pump().catch(() => {}));
    client.on('error', () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      void client.end().catch(() => {});
      setTimeout(() => void this.listen().catch(() => {}), POLL_MS).unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
      if (this.closed) {
        await client.end().catch(() => {});
        return;
      }
      this.listener = client;
    } catch {
      void client.end().catch(() => {});
      setTimeout(() => void this.listen().catch(() => {}), POLL_MS).unref();
    }
    // Writes made while it was down are read now.
    void this.pump().catch(() => {});
  }

  /** Reads events after the last delivered one, in order; one read at a time, repeated if asked again. */
  private pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      try {
        do {
          this.pumpAgain = false;
          await this.readEvents();
        } while (this.pumpAgain && !this.closed);
      } finally {
        this.pumping = undefined;
      }
    })();
    return this.pumping;
  }

  private async readEvents(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const r = await this.pool.query<{ rv: string; type: WatchEvent['type']; object: KObject }>(
        `SELECT rv, type, object FROM ${this.t.events} WHERE rv > $1 ORDER BY rv LIMIT 500`,
        [this.delivered],
      );
      for (const row of r.rows) {
        const rv = Number(row.rv);
        const event: WatchEvent = { type: row.type, object: row.object };
        this.delivered = rv;
        this.history.remember(rv, event);
        for (const l of this.listeners) if (rv > l.since) l.deliver(structuredClone(event));
      }
      if (r.rows.length < 500) return;
    }
  }
}
