/**
 * Hostile SQL against the embedded Database's disk reserve (bindings/database/disk-writes.ts):
 * while the node's data disk is in its reserve, no statement of a tenant may grow its database,
 * whatever its first keyword says. Each statement below writes while looking like a read or a
 * delete; each must be refused (or fail) and leave the database as it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { d1Statements } from '../../src/bindings/database/d1.js';
import { openEmbeddedDatabase } from '../../src/bindings/database/embedded.js';
import type { DatabaseProvider } from '../../src/bindings/database/interface.js';
import type { ResourceRef } from '../../src/bindings/provider.js';

const dataDir = mkdtempSync(join(tmpdir(), 'kylix-disk-reserve-sql-'));
const ref: ResourceRef = { namespace: 'hostile', name: 'full' };
const plain: ResourceRef = { namespace: 'hostile', name: 'plain' };
/** A database whose only code is an operator over a built-in that writes. */
const operated: ResourceRef = { namespace: 'hostile', name: 'operated' };
/** A database whose only writer is a column default that ON DELETE SET DEFAULT evaluates. */
const defaulted: ResourceRef = { namespace: 'hostile', name: 'defaulted' };

/** Statements that grow a database while reading as something that may run in the reserve. */
const SNEAKY: Record<string, string> = {
  'EXPLAIN ANALYZE of an INSERT':
    "EXPLAIN ANALYZE INSERT INTO t SELECT repeat('x', 100) FROM generate_series(1, 100)",
  'EXPLAIN (ANALYZE) of an INSERT': "EXPLAIN (ANALYZE) INSERT INTO t VALUES ('y')",
  'a DELETE after an inserting CTE':
    "WITH w AS (INSERT INTO t VALUES ('z') RETURNING v) DELETE FROM t WHERE v IN (SELECT v FROM w) AND false",
  'a large object from a SELECT': "SELECT lo_from_bytea(0, convert_to(repeat('x', 1000), 'UTF8'))",
  'a function that inserts, called from a SELECT': 'SELECT grow()',
  'a function that inserts, called from VALUES': 'VALUES (grow())',
  'a quoted function call': 'SELECT "grow"()',
  'a DELETE that calls a function': 'DELETE FROM t WHERE grow() = 0',
  'a DELETE whose trigger inserts': 'DELETE FROM audited',
  'a TRUNCATE whose trigger inserts': 'TRUNCATE audited',
  'a DELETE on a view whose rule inserts': 'DELETE FROM ruled',
};

describe('hostile: SQL that grows an embedded Database while the disk is in its reserve', () => {
  let p: DatabaseProvider;
  let reserve: string | undefined;
  before(async () => {
    p = await openEmbeddedDatabase({ dataDir });
    await p.ensure(ref);
    await p.query(ref, { sql: 'CREATE TABLE t (v text)' });
    await p.query(ref, {
      sql: "CREATE FUNCTION grow() RETURNS int LANGUAGE sql AS $$ INSERT INTO t SELECT repeat('g', 100) FROM generate_series(1, 100); SELECT 1 $$",
    });
    await p.query(ref, {
      sql: 'CREATE FUNCTION grow_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM grow(); RETURN OLD; END $$',
    });
    await p.query(ref, { sql: 'CREATE TABLE audited (v int)' });
    await p.query(ref, { sql: 'INSERT INTO audited VALUES (1)' });
    await p.query(ref, {
      sql: 'CREATE TRIGGER a BEFORE DELETE ON audited FOR EACH ROW EXECUTE FUNCTION grow_trigger()',
    });
    await p.query(ref, {
      sql: 'CREATE TRIGGER b BEFORE TRUNCATE ON audited EXECUTE FUNCTION grow_trigger()',
    });
    await p.query(ref, { sql: 'CREATE VIEW ruled AS SELECT 1 AS v' });
    await p.query(ref, {
      sql: "CREATE RULE r AS ON DELETE TO ruled DO INSTEAD INSERT INTO t SELECT repeat('r', 100) FROM generate_series(1, 100)",
    });
    await p.ensure(operated);
    await p.query(operated, { sql: 'CREATE TABLE t (v text)' });
    await p.query(operated, { sql: "INSERT INTO t VALUES ('keep')" });
    await p.query(operated, {
      sql: 'CREATE OPERATOR === (FUNCTION = lo_from_bytea, LEFTARG = oid, RIGHTARG = bytea)',
    });
    await p.query(ref, { sql: "INSERT INTO t VALUES ('keep')" });
    await p.ensure(defaulted);
    await p.query(defaulted, { sql: 'CREATE TABLE parent (id int PRIMARY KEY)' });
    await p.query(defaulted, {
      sql: "CREATE TABLE child (p int DEFAULT (lo_from_bytea(0, convert_to(repeat('x', 1000), 'UTF8'))::int % 1) REFERENCES parent ON DELETE SET DEFAULT)",
    });
    await p.query(defaulted, { sql: 'INSERT INTO parent VALUES (0), (1)' });
    await p.query(defaulted, { sql: 'INSERT INTO child VALUES (1)' });
    await p.ensure(plain);
    // Through D1's translation, as a drizzle app makes it: with the rowid trigger function Kylix adds.
    await p.batch(
      plain,
      d1Statements([{ sql: 'CREATE TABLE `t` (`id` integer PRIMARY KEY AUTOINCREMENT, `v` text)' }])
        .statements,
    );
    await p.query(plain, { sql: "INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b')" });
    reserve = process.env.KYLIX_DISK_RESERVE_MIB;
    // A reserve larger than any disk: every disk is in it.
    process.env.KYLIX_DISK_RESERVE_MIB = String(2 ** 40);
  });
  after(async () => {
    if (reserve === undefined) delete process.env.KYLIX_DISK_RESERVE_MIB;
    else process.env.KYLIX_DISK_RESERVE_MIB = reserve;
    await p?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const unchanged = async () => {
    const r = await p.query(ref, {
      sql: 'SELECT (SELECT count(*)::int FROM t) AS rows, (SELECT count(*)::int FROM pg_largeobject_metadata) AS los',
    });
    assert.deepEqual(r.rows, [{ rows: 1, los: 0 }]);
  };

  for (const [name, sql] of Object.entries(SNEAKY)) {
    it(`does not let ${name} write`, async () => {
      await p.query(ref, { sql }).catch(() => {});
      await unchanged();
      await p.batch(ref, [{ sql: 'SELECT 1' }, { sql }]).catch(() => {});
      await unchanged();
      const tx = await p.begin(ref, 5000);
      await p.queryInTransaction(tx, { sql }).catch(() => {});
      await p.commit(tx).catch(() => {});
      await unchanged();
    });
  }

  it('does not let a DELETE write through an operator over a built-in that writes (a large object)', async () => {
    const sql = "DELETE FROM t WHERE (0::oid === convert_to(repeat('x', 1000), 'UTF8'))::int < 0";
    await p.query(operated, { sql }).catch(() => {});
    const r = await p.query(operated, { sql: 'SELECT count(*)::int AS los FROM pg_largeobject_metadata' });
    assert.deepEqual(r.rows, [{ los: 0 }]);
  });

  it('stops a statement let in with room once the disk reaches the reserve while it writes', async () => {
    const roomy = mkdtempSync(join(tmpdir(), 'kylix-disk-watch-'));
    const q = await openEmbeddedDatabase({ dataDir: roomy });
    const held = process.env.KYLIX_DISK_RESERVE_MIB;
    try {
      process.env.KYLIX_DISK_RESERVE_MIB = '0';
      await q.ensure(plain);
      await q.query(plain, { sql: 'CREATE TABLE big (v text)' });
      // One INSERT … SELECT that writes for as long as it may (here it waits, then writes).
      const started = Date.now();
      const writing = q.query(plain, {
        sql: "INSERT INTO big SELECT repeat('x', 1000) FROM generate_series(1, 1000), pg_sleep(4)",
      });
      await new Promise((r) => setTimeout(r, 500));
      process.env.KYLIX_DISK_RESERVE_MIB = String(2 ** 40);
      await assert.rejects(writing, (e: Error & { code?: string }) => e.code === 'ERR_BACKEND_UNAVAILABLE');
      assert.ok(Date.now() - started < 3000, 'stopped at the reserve, not at its end');
      assert.deepEqual((await q.query(plain, { sql: 'SELECT count(*)::int AS n FROM big' })).rows, [
        { n: 0 },
      ]);
    } finally {
      process.env.KYLIX_DISK_RESERVE_MIB = held;
      await q.close();
      rmSync(roomy, { recursive: true, force: true });
    }
  });

  it('does not let a DELETE write through a foreign key that sets a default (a large object)', async () => {
    await p.query(defaulted, { sql: 'DELETE FROM parent WHERE id = 1' }).catch(() => {});
    const r = await p.query(defaulted, { sql: 'SELECT count(*)::int AS los FROM pg_largeobject_metadata' });
    assert.deepEqual(r.rows, [{ los: 0 }]);
  });

  it('refuses SQL that writes WAL outside any table (it fills the disk from a SELECT, read-only or not)', async () => {
    for (const sql of [
      'SELECT pg_switch_wal()',
      "SELECT pg_logical_emit_message(false, 'x', repeat('x', 1000))",
      "SELECT pg_create_restore_point('x')",
      "SELECT pg_backup_start('x')",
      "SELECT pg_create_physical_replication_slot('keep', true)",
      "SELECT * FROM pg_create_logical_replication_slot('keep2', 'test_decoding')",
    ])
      for (const db of [ref, plain])
        await assert.rejects(
          p.query(db, { sql }),
          (e: Error & { sqlState?: string }) => e.sqlState === '42501',
          sql,
        );
  });

  it('still answers reads and deletes where no code of the tenant could write, in and out of transactions', async () => {
    assert.deepEqual((await p.query(plain, { sql: 'SELECT 1 AS one' })).rows, [{ one: 1 }]);
    const [read] = await p.batch(plain, [
      { sql: 'SELECT count(*)::int AS n FROM t' },
      { sql: 'DELETE FROM t WHERE id = 1' },
    ]);
    assert.deepEqual(read!.rows, [{ n: 2 }]);
    const tx = await p.begin(plain, 5000);
    assert.deepEqual((await p.queryInTransaction(tx, { sql: 'SELECT v FROM t' })).rows, [{ v: 'b' }]);
    await p.queryInTransaction(tx, { sql: 'DELETE FROM t' });
    assert.ok((await p.queryInTransaction(tx, { sql: 'EXPLAIN SELECT * FROM t' })).rows.length > 0);
    assert.deepEqual((await p.queryInTransaction(tx, { sql: 'SELECT count(*)::int AS n FROM t' })).rows, [
      { n: 0 },
    ]);
    await p.commit(tx);
    assert.deepEqual((await p.query(plain, { sql: 'SELECT count(*)::int AS n FROM t' })).rows, [{ n: 0 }]);
    // A read's error does not leave a read-only transaction behind.
    await assert.rejects(p.query(plain, { sql: 'SELECT nope FROM t' }));
    assert.deepEqual((await p.query(plain, { sql: 'SELECT 3 AS three' })).rows, [{ three: 3 }]);
  });
});
