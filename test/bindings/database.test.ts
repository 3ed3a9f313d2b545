/**
 * The Database conformance suite against every provider, plus what differs between them: how far
 * one resource can see another, and that PGlite's work never stalls the caller's event loop.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { identifierFor } from '../../src/bindings/database/common.js';
import { type EmbeddedDatabaseProvider, openEmbeddedDatabase } from '../../src/bindings/database/embedded.js';
import { createDatabaseProvider } from '../../src/bindings/database/index.js';
import { openPostgresDatabase, type PostgresDatabaseProvider } from '../../src/bindings/database/postgres.js';
import { KylixError } from '../../src/errors.js';
import { reachable } from '../helpers/reachable.js';
import { tempDir } from '../helpers/temp-dir.js';
import { databaseConformance, isError } from './database-conformance.js';

const dataDir = tempDir('db');

databaseConformance({ name: 'embedded (PGlite)', open: () => openEmbeddedDatabase({ dataDir }) });

const pgUrl = process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the PostgreSQL database suite: ${pgDown}`);
databaseConformance({ name: 'postgres', skip: pgDown, open: () => openPostgresDatabase({ url: pgUrl }) });

const a = { namespace: 'iso', name: 'a' };
const b = { namespace: 'iso', name: 'b' };

describe('embedded database specifics', () => {
  let p: EmbeddedDatabaseProvider;
  before(async () => {
    p = await openEmbeddedDatabase({ dataDir });
  });
  after(async () => {
    await p.close();
  });

  it('keeps data across a close and reopen', async () => {
    await p.ensure(a);
    await p.query(a, { sql: 'CREATE TABLE kept (v text)' });
    await p.query(a, { sql: "INSERT INTO kept VALUES ('still here')" });
    await p.close();
    p = await openEmbeddedDatabase({ dataDir });
    assert.deepEqual((await p.query(a, { sql: 'SELECT v FROM kept' })).rows, [{ v: 'still here' }]);
  });

  it('gives each resource its own engine: another resource’s tables cannot be named at all', async () => {
    await p.ensure(b);
    await p.query(b, { sql: 'CREATE TABLE kept (v text)' });
    assert.deepEqual((await p.query(b, { sql: 'SELECT v FROM kept' })).rows, []);
    await assert.rejects(
      p.query(b, { sql: `SELECT v FROM ${identifierFor(a)}.kept` }),
      isError('ERR_SQL', '42P01', /does not exist/),
    );
  });

  it('stops statements that may grow a database while the data disk is in its reserve; reads and deletes go on', async () => {
    await p.ensure(a);
    await p.query(a, { sql: 'CREATE TABLE IF NOT EXISTS full_disk (v int)' });
    await p.query(a, { sql: 'INSERT INTO full_disk VALUES (1), (2)' });
    const before = process.env.KYLIX_DISK_RESERVE_MIB;
    // A reserve larger than any disk: every disk is in it.
    process.env.KYLIX_DISK_RESERVE_MIB = String(2 ** 40);
    try {
      const refused = (e: KylixError) =>
        e.code === 'ERR_BACKEND_UNAVAILABLE' && /refusing writes/.test(e.message);
      for (const sql of [
        'INSERT INTO full_disk VALUES (3)',
        'CREATE TABLE more (v int)',
        'WITH w AS (INSERT INTO full_disk VALUES (4) RETURNING v) SELECT * FROM w',
        'SELECT * INTO copied FROM full_disk',
        'SELECT 1; UPDATE full_disk SET v = v + 1',
      ])
        await assert.rejects(p.query(a, { sql }), refused, sql);
      await assert.rejects(
        p.batch(a, [{ sql: 'SELECT 1' }, { sql: 'INSERT INTO full_disk VALUES (5)' }]),
        refused,
      );
      assert.deepEqual((await p.query(a, { sql: 'SELECT count(*)::int AS n FROM full_disk' })).rows, [
        { n: 2 },
      ]);
      await p.query(a, { sql: 'DELETE FROM full_disk WHERE v = 2' });
      // In a transaction, the refused statement never ran: the transaction goes on.
      const tx = await p.begin(a, 5000);
      await assert.rejects(p.queryInTransaction(tx, { sql: 'INSERT INTO full_disk VALUES (6)' }), refused);
      assert.deepEqual((await p.queryInTransaction(tx, { sql: 'SELECT v FROM full_disk' })).rows, [{ v: 1 }]);
      await p.rollback(tx);
    } finally {
      if (before === undefined) delete process.env.KYLIX_DISK_RESERVE_MIB;
      else process.env.KYLIX_DISK_RESERVE_MIB = before;
    }
    await p.query(a, { sql: 'INSERT INTO full_disk VALUES (7)' });
    await p.query(a, { sql: 'DROP TABLE full_disk' });
  });

  it('runs PGlite off the caller’s thread: timers fire while a slow query runs', async () => {
    await p.ensure(a);
    let done = false;
    const slow = p
      .query(a, { sql: 'SELECT count(*) AS n FROM generate_series(1, 3000000) s' })
      .finally(() => {
        done = true;
      });
    const tickedWhileRunning = await new Promise((r) => setTimeout(() => r(!done), 20));
    const result = await slow;
    assert.equal(tickedWhileRunning, true, 'a timer fired before the query finished');
    assert.equal(result.rows[0]?.n, '3000000');
  });
});

describe('embedded database engines in use at once', () => {
  it('runs at most maxOpen engines, one namespace at most half of them, however busy it keeps them', async () => {
    const dir = tempDir('db-slots');
    const p = await openEmbeddedDatabase({ dataDir: dir, maxOpen: 2 });
    const inUse = () => (p as unknown as { slots: { inUse: number } }).slots.inUse;
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, inUse());
    }, 5);
    try {
      const victim = { namespace: 'victim', name: 'd' };
      const greedy = [1, 2, 3].map((i) => ({ namespace: 'greedy', name: `d${i}` }));
      for (const ref of [victim, ...greedy]) await p.ensure(ref);
      // Three Databases busy at once: they take turns on the namespace's one engine (its share).
      const results = await Promise.all(
        greedy.map((ref) => p.query(ref, { sql: 'SELECT pg_sleep(0.3), 1 AS n' })),
      );
      assert.deepEqual(
        results.map((r) => r.rows[0]?.n),
        [1, 1, 1],
      );
      // One namespace keeps its Databases busy without a pause; another namespace's Database is
      // served while it does, not after it stops.
      const end = Date.now() + 8000;
      const loops = greedy.slice(0, 2).map(async (ref) => {
        while (Date.now() < end) await p.query(ref, { sql: 'SELECT pg_sleep(0.3)' });
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await p.query(victim, { sql: 'SELECT 2 AS n' })).rows[0]?.n, 2);
      assert.ok(Date.now() < end, 'the other namespace was served only once the busy one stopped');
      await Promise.all(loops);
      assert.ok(most <= 2, `${most} engines ran at once`);
    } finally {
      clearInterval(watch);
      await p.close();
    }
  });

  it('closes a drained engine once its last transaction ends, and its next call starts it again', async () => {
    const dir = tempDir('db-drain');
    // Idle engines are not swept during the test: only the drain may close the engine.
    const p = await openEmbeddedDatabase({ dataDir: dir, maxOpen: 2, idleMs: 600_000 });
    try {
      const held = { namespace: 'held', name: 'd' };
      const busy = { namespace: 'busy', name: 'd' };
      const third = { namespace: 'third', name: 'd' };
      for (const ref of [held, busy, third]) await p.ensure(ref);
      // Both slots in use: one by an open transaction, one by a query. The third namespace waits,
      // and the engine of the first namespace at its share (the transaction's) drains; the third
      // gives up (nothing frees a slot within its wait) before the transaction ends.
      const tx = await p.begin(held, 60_000);
      await p.queryInTransaction(tx, { sql: 'SELECT 1' });
      const sleeping = p.query(busy, { sql: 'SELECT pg_sleep(14)' });
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(
        p.query(third, { sql: 'SELECT 3' }),
        /embedded database engines on this node are busy/,
      );
      // Ending the transaction leaves the drained engine idle: it closes, and the Database's next
      // call starts it again (it waited for the idle sweep, a minute by default, before).
      await p.commit(tx);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('still waiting after 8 s')), 8000);
      });
      try {
        const next = await Promise.race([p.query(held, { sql: 'SELECT 4 AS n' }), late]);
        assert.equal(next.rows[0]?.n, 4);
      } finally {
        clearTimeout(timer);
      }
      await sleeping;
    } finally {
      await p.close();
    }
  });
});

describe('postgres database specifics', { skip: pgDown }, () => {
  let p: PostgresDatabaseProvider;
  before(async () => {
    p = await openPostgresDatabase({ url: pgUrl });
    await p.ensure(a);
    await p.ensure(b);
  });
  after(async () => {
    await p.purge(a);
    await p.purge(b);
    await p.close();
  });

  it('gives each resource its own database: another resource’s tables cannot be named at all', async () => {
    await p.query(a, { sql: 'CREATE TABLE IF NOT EXISTS secret (v text)' });
    await assert.rejects(
      p.query(b, { sql: `SELECT * FROM ${identifierFor(a)}.public.secret` }),
      isError('ERR_SQL', '0A000', /cross-database references are not implemented/),
    );
    const dbs = await p.query(b, { sql: 'SELECT current_database() AS db' });
    assert.equal(dbs.rows[0]?.db, identifierFor(b));
  });

  it("survives a tenant ending its own transaction's session (pg_terminate_backend): only that transaction fails", async () => {
    // An 'error' event on a checked-out client with no listener would end this process (and the test).
    const tx = await p.begin(a, 10_000);
    const pid = (await p.queryInTransaction(tx, { sql: 'SELECT pg_backend_pid() AS pid' })).rows[0]?.pid;
    await p.query(a, { sql: 'SELECT pg_terminate_backend($1)', params: [pid] });
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(p.queryInTransaction(tx, { sql: 'SELECT 1' }));
    await p.rollback(tx).catch(() => {});
    assert.equal((await p.query(a, { sql: 'SELECT 1 AS one' })).rows[0]?.one, 1);
  });
});

describe('database provider config', () => {
  it('rejects a bad config with every field named', async () => {
    await assert.rejects(
      createDatabaseProvider({ provider: 'postgres', url: 'mysql://x', pool: 2 }),
      (err) => {
        assert.ok(err instanceof KylixError && err.code === 'ERR_CONFIG_INVALID');
        assert.deepEqual(err.causes.map((c) => c.field).sort(), ['database.pool', 'database.url']);
        return true;
      },
    );
    await assert.rejects(createDatabaseProvider({ provider: 'sqlite' }), isError('ERR_CONFIG_INVALID'));
  });

  it('says clearly when PostgreSQL cannot be reached', async () => {
    await assert.rejects(
      createDatabaseProvider({ provider: 'postgres', url: 'postgres://postgres@127.0.0.1:1/postgres' }),
      isError('ERR_BACKEND_UNAVAILABLE', undefined, /Cannot reach PostgreSQL/),
    );
  });

  it('opens the postgres provider from a valid config', { skip: pgDown }, async () => {
    const p = await createDatabaseProvider({ provider: 'postgres', url: pgUrl, poolSize: 2 });
    assert.equal(p.name, 'postgres');
    await p.close();
  });
});

describe('SQL errors from the server rather than the statement', () => {
  it('are ERR_BACKEND_UNAVAILABLE (starting up, out of disk, connection lost), the rest ERR_SQL', async () => {
    const { sqlError } = await import('../../src/bindings/database/common.js');
    for (const code of ['57P03', '57P01', '53100', '53300', '08006', '58030']) {
      const e = sqlError({ code, message: 'the database system is starting up' }) as KylixError;
      assert.equal(e.code, 'ERR_BACKEND_UNAVAILABLE', code);
      assert.match(e.message, /cannot run statements now: the database system is starting up; retry shortly/);
    }
    for (const code of ['42P01', '23505', '22P02', '54000'])
      assert.equal((sqlError({ code, message: 'x' }) as KylixError).code, 'ERR_SQL', code);
    assert.equal((sqlError({ code: '57014', message: 'x' }) as KylixError).code, 'ERR_TIMEOUT');
  });
});
