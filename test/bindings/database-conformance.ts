/**
 * The Database conformance suite: what a user of any Database provider can rely on, so SQL that
 * passes on the laptop (PGlite) passes in production (PostgreSQL). One provider serves the whole
 * suite (PGlite is slow to start); every case uses its own Database resource and purges it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { DatabaseProvider } from '../../src/bindings/database/interface.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import { KylixError } from '../../src/errors.js';
import { eventually } from '../helpers/eventually.js';
import { collidingGroups } from './colliding-refs.js';
import { d1Cases } from './database-d1-cases.js';

/** How to run the suite against one provider. */
export interface DatabaseSuite {
  name: string;
  /** Set when the backend is unreachable: the suite is skipped with this reason. */
  skip?: string;
  /** The provider for the whole suite; the suite closes it. */
  open(): Promise<DatabaseProvider>;
}

/** Matches a KylixError with this code (and SQLSTATE, for ERR_SQL). */
export function isError(code: string, sqlState?: string, text?: RegExp) {
  return (err: unknown) => {
    if (!(err instanceof KylixError) || err.code !== code) return false;
    if (sqlState && (err as KylixError & { sqlState?: string }).sqlState !== sqlState) return false;
    return !text || text.test(err.message);
  };
}

/** Registers the suite's cases for one provider. */
export function databaseConformance(suite: DatabaseSuite): void {
  describe(`Database conformance: ${suite.name}`, { skip: suite.skip }, () => {
    let p: DatabaseProvider;
    const refs: ResourceRef[] = [];
    before(async () => {
      p = await suite.open();
    });
    after(async () => {
      for (const ref of refs) await p.purge(ref).catch(() => {});
      await p.close();
    });

    async function database(): Promise<ResourceRef> {
      const ref = { namespace: 'conformance', name: `db-${randomBytes(4).toString('hex')}` };
      refs.push(ref);
      await p.ensure(ref);
      return ref;
    }
    const count = async (ref: ResourceRef, table: string) =>
      (await p.query(ref, { sql: `SELECT count(*)::int AS n FROM ${table}` })).rows[0]?.n;

    it('runs parameterized statements ($1) and reports rows returned or affected', async () => {
      const db = await database();
      await p.query(db, { sql: 'CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)' });
      const one = await p.query(db, {
        sql: 'INSERT INTO users (name) VALUES ($1) RETURNING id',
        params: ['ada'],
      });
      assert.equal(one.rowCount, 1);
      assert.deepEqual(one.rows, [{ id: 1 }]);
      const two = await p.query(db, {
        sql: 'INSERT INTO users (name) VALUES ($1), ($2)',
        params: ['bob', "x'); DROP TABLE users; --"],
      });
      assert.equal(two.rowCount, 2);
      assert.deepEqual(two.rows, []);
      const upd = await p.query(db, {
        sql: 'UPDATE users SET name = upper(name) WHERE id <= $1',
        params: [2],
      });
      assert.equal(upd.rowCount, 2);
      const sel = await p.query(db, {
        sql: 'SELECT id, name FROM users WHERE id > $1 ORDER BY id',
        params: [0],
      });
      assert.equal(sel.rowCount, 3);
      assert.deepEqual(
        sel.rows[2],
        { id: 3, name: "x'); DROP TABLE users; --" },
        'parameters are data, never SQL',
      );
      assert.deepEqual(
        sel.fields.map((f) => [f.name, f.dataTypeID]),
        [
          ['id', 23],
          ['name', 25],
        ],
      );
      const del = await p.query(db, { sql: 'DELETE FROM users WHERE name = $1', params: ['nobody'] });
      assert.equal(del.rowCount, 0);
    });

    it('round-trips int, bigint, numeric, text, jsonb, timestamptz, date, bytea, boolean and null the same way', async () => {
      const db = await database();
      await p.query(db, {
        sql: `CREATE TABLE t (i int, b bigint, n numeric(10,2), s text, j jsonb, ts timestamptz, d date,
                              by bytea, ok boolean, nothing text)`,
      });
      const when = new Date('2024-02-29T12:34:56.789Z');
      await p.query(db, {
        sql: 'INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
        params: [
          42,
          '9007199254740993',
          '1.5',
          'héllo ✓',
          { a: [1, { b: null }] },
          when,
          '2024-02-29',
          new Uint8Array([0, 1, 254, 255]),
          true,
          null,
        ],
      });
      const { rows } = await p.query(db, { sql: 'SELECT * FROM t' });
      const r = rows[0]!;
      assert.equal(r.i, 42);
      assert.equal(r.b, '9007199254740993', 'bigint comes back as a string: it may not fit a JS number');
      assert.equal(r.n, '1.50', 'numeric comes back as its exact string');
      assert.equal(r.s, 'héllo ✓');
      assert.deepEqual(r.j, { a: [1, { b: null }] });
      assert.ok(r.ts instanceof Date && r.ts.getTime() === when.getTime());
      assert.equal(r.d, '2024-02-29', 'a date is its calendar day, not a time-zone-shifted Date');
      assert.ok(r.by instanceof Uint8Array && !Buffer.isBuffer(r.by));
      assert.deepEqual([...(r.by as Uint8Array)], [0, 1, 254, 255]);
      assert.equal(r.ok, true);
      assert.equal(r.nothing, null);
    });

    it('surfaces SQL errors with the PostgreSQL message and SQLSTATE', async () => {
      const db = await database();
      await assert.rejects(
        p.query(db, { sql: 'SELECT * FROM missing' }),
        isError('ERR_SQL', '42P01', /relation "missing" does not exist/),
      );
      await assert.rejects(p.query(db, { sql: 'SELEC 1' }), isError('ERR_SQL', '42601', /syntax error/));
      await p.query(db, { sql: 'CREATE TABLE u (k text PRIMARY KEY)' });
      await p.query(db, { sql: "INSERT INTO u VALUES ('a')" });
      await assert.rejects(
        p.query(db, { sql: "INSERT INTO u VALUES ('a')" }),
        isError('ERR_SQL', '23505', /duplicate key/),
      );
      assert.equal((await p.query(db, { sql: 'SELECT 1 AS one' })).rows[0]?.one, 1, 'usable after an error');
    });

    it('runs a batch in one transaction: any error rolls all of it back', async () => {
      const db = await database();
      await p.query(db, {
        sql: 'CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))',
      });
      const ok = await p.batch(db, [
        { sql: 'INSERT INTO acct VALUES ($1, $2)', params: [1, 100] },
        { sql: 'INSERT INTO acct VALUES ($1, $2)', params: [2, 0] },
        { sql: 'SELECT sum(balance)::int AS total FROM acct' },
      ]);
      assert.equal(ok.length, 3);
      assert.equal(ok[2]?.rows[0]?.total, 100);
      await assert.rejects(
        p.batch(db, [
          { sql: 'UPDATE acct SET balance = balance + 50 WHERE id = 2' },
          { sql: 'UPDATE acct SET balance = balance - 150 WHERE id = 1' },
        ]),
        isError('ERR_SQL', '23514'),
      );
      const { rows } = await p.query(db, { sql: 'SELECT id, balance FROM acct ORDER BY id' });
      assert.deepEqual(rows, [
        { id: 1, balance: 100 },
        { id: 2, balance: 0 },
      ]);
    });

    it('commits an interactive transaction, and rolls one back on request', async () => {
      const db = await database();
      await p.query(db, { sql: 'CREATE TABLE kv (k text PRIMARY KEY, v int)' });
      const tx = await p.begin(db, 10_000);
      await p.queryInTransaction(tx, { sql: 'INSERT INTO kv VALUES ($1, $2)', params: ['a', 1] });
      const inside = await p.queryInTransaction(tx, { sql: 'SELECT v FROM kv WHERE k = $1', params: ['a'] });
      assert.deepEqual(inside.rows, [{ v: 1 }], 'a transaction sees its own writes');
      await p.commit(tx);
      assert.equal(await count(db, 'kv'), 1);

      const tx2 = await p.begin(db, 10_000);
      await p.queryInTransaction(tx2, { sql: "INSERT INTO kv VALUES ('b', 2)" });
      await p.rollback(tx2);
      assert.equal(await count(db, 'kv'), 1);
      await assert.rejects(p.queryInTransaction(tx2, { sql: 'SELECT 1' }), isError('ERR_TRANSACTION_CLOSED'));
      await assert.rejects(p.commit(tx2), isError('ERR_TRANSACTION_CLOSED'));
    });

    it('rolls back an interactive transaction whose statement fails', async () => {
      const db = await database();
      await p.query(db, { sql: 'CREATE TABLE kv (k text PRIMARY KEY)' });
      const tx = await p.begin(db, 10_000);
      await p.queryInTransaction(tx, { sql: "INSERT INTO kv VALUES ('a')" });
      await assert.rejects(
        p.queryInTransaction(tx, { sql: "INSERT INTO kv VALUES ('a')" }),
        isError('ERR_SQL', '23505'),
      );
      await assert.rejects(p.commit(tx), isError('ERR_TRANSACTION_CLOSED'));
      assert.equal(await count(db, 'kv'), 0);
    });

    it('rolls back an interactive transaction that outlives its timeout', async () => {
      const db = await database();
      await p.query(db, { sql: 'CREATE TABLE kv (k text PRIMARY KEY)' });
      const tx = await p.begin(db, 300);
      await p.queryInTransaction(tx, { sql: "INSERT INTO kv VALUES ('a')" });
      await eventually(() =>
        p.queryInTransaction(tx, { sql: 'SELECT 1' }).then(
          () => false,
          (err) => isError('ERR_TRANSACTION_CLOSED', undefined, /timed out/)(err),
        ),
      );
      await assert.rejects(p.commit(tx), isError('ERR_TRANSACTION_CLOSED', undefined, /timed out/));
      assert.equal(await count(db, 'kv'), 0);
      assert.equal(
        (await p.query(db, { sql: 'SELECT 2 AS two' })).rows[0]?.two,
        2,
        'the database is free again',
      );
    });

    it('applies migrations once each, in name order, and stops at a failing one', async () => {
      const db = await database();
      const m1 = {
        name: '001_items',
        sql: 'CREATE TABLE items (id int PRIMARY KEY); CREATE INDEX ON items (id);',
      };
      const m2 = { name: '002_items_name', sql: 'ALTER TABLE items ADD COLUMN name text' };
      assert.deepEqual(await p.migrate(db, [m2, m1]), ['001_items', '002_items_name']);
      assert.deepEqual(await p.migrate(db, [m1, m2]), [], 'nothing twice');
      const bad = {
        name: '003_bad',
        sql: 'ALTER TABLE items ADD COLUMN extra int; ALTER TABLE nope ADD COLUMN x int;',
      };
      const m4 = { name: '004_more', sql: 'ALTER TABLE items ADD COLUMN more int' };
      await assert.rejects(p.migrate(db, [m1, m2, bad, m4]), isError('ERR_SQL', '42P01', /003_bad/));
      const cols = await p.query(db, {
        sql: "SELECT column_name FROM information_schema.columns WHERE table_name = 'items' AND table_schema = current_schema() ORDER BY ordinal_position",
      });
      assert.deepEqual(
        cols.rows.map((r) => r.column_name),
        ['id', 'name'],
        'the failed migration left nothing behind, and later ones did not run',
      );
      const fixed = { name: '003_bad', sql: 'ALTER TABLE items ADD COLUMN extra int' };
      assert.deepEqual(await p.migrate(db, [m1, m2, fixed, m4]), ['003_bad', '004_more']);
      await assert.rejects(p.migrate(db, [m1, m1]), isError('ERR_BAD_REQUEST'));
    });

    it('keeps two Database resources with the same table names independent', async () => {
      const a = await database();
      const b = await database();
      for (const db of [a, b]) await p.query(db, { sql: 'CREATE TABLE items (name text)' });
      await p.query(a, { sql: "INSERT INTO items VALUES ('only in a')" });
      assert.equal(await count(a, 'items'), 1);
      assert.equal(await count(b, 'items'), 0);
      await p.migrate(a, [{ name: '001', sql: 'CREATE TABLE extra (x int)' }]);
      assert.deepEqual(await p.migrate(b, [{ name: '001', sql: 'CREATE TABLE extra (x int)' }]), ['001']);
      await p.purge(a);
      await assert.rejects(p.query(a, { sql: 'SELECT 1' }), isError('ERR_NOT_FOUND'));
      assert.equal(await count(b, 'items'), 0, 'purging one leaves the other');
      await p.ensure(a);
      await assert.rejects(
        p.query(a, { sql: 'SELECT * FROM items' }),
        isError('ERR_SQL', '42P01'),
        'purged for good',
      );
    });

    it('keeps apart every group of databases the old "-" to "_" identifiers folded together', async () => {
      for (const group of collidingGroups()) {
        refs.push(...group);
        for (const ref of group) await p.ensure(ref);
        // The same table name in each: a shared database or schema would refuse the second CREATE.
        for (const [i, ref] of group.entries()) {
          await p.query(ref, { sql: 'CREATE TABLE tenant (who text)' });
          await p.query(ref, { sql: 'INSERT INTO tenant VALUES ($1)', params: [`tenant ${i}`] });
        }
        for (const [i, ref] of group.entries())
          assert.deepEqual((await p.query(ref, { sql: 'SELECT who FROM tenant' })).rows, [
            { who: `tenant ${i}` },
          ]);
        const [first, ...rest] = group;
        await p.purge(first!);
        for (const [i, ref] of rest.entries())
          assert.deepEqual((await p.query(ref, { sql: 'SELECT who FROM tenant' })).rows, [
            { who: `tenant ${i + 1}` },
          ]);
      }
    });

    it('rejects calls for a Database that was never ensured', async () => {
      const ghost = { namespace: 'conformance', name: `ghost-${randomBytes(4).toString('hex')}` };
      await assert.rejects(p.query(ghost, { sql: 'SELECT 1' }), isError('ERR_NOT_FOUND', undefined, /ghost/));
      await assert.rejects(p.begin(ghost, 1000), isError('ERR_NOT_FOUND'));
      await assert.rejects(p.migrate(ghost, []), isError('ERR_NOT_FOUND'));
    });

    d1Cases(() => p, database);

    it('reports itself healthy', async () => {
      const h = await p.health();
      assert.equal(h.ok, true, h.message);
      assert.match(h.message, /PostgreSQL|PGlite/);
    });
  });
}
