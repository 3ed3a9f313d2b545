/**
 * The D1 part of the Database conformance suite: the Database kind's D1 operations (what
 * env.DB.prepare(...).all(), batch([...]) and exec() call) run against each provider, so a D1 app
 * behaves the same on PGlite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { DatabaseProvider } from '../../src/bindings/database/interface.js';
import { databaseKind } from '../../src/bindings/database/kind.js';
import type { Handles } from '../../src/bindings/kind.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import { isError } from './database-conformance.js';

const noHandles: Handles = { grant: () => {}, owns: () => false, release: () => {} };

type Wire = {
  results: Record<string, unknown>[];
  columns: string[];
  success: boolean;
  meta: Record<string, number | boolean | string>;
};

/** Registers the D1 cases; `provider()` and `database()` come from the suite. */
export function d1Cases(provider: () => DatabaseProvider, database: () => Promise<ResourceRef>): void {
  const run = (name: 'd1Query' | 'd1Batch' | 'd1Exec', ref: ResourceRef, args: unknown[]) => {
    const op = databaseKind.ops[name];
    return op.run(provider(), op.args.parse(args), { ref, handles: noHandles });
  };
  const q = (ref: ResourceRef, sql: string, params: unknown[] = []) =>
    run('d1Query', ref, [{ sql, params }]) as Promise<Wire>;

  it('D1: runs "?" and "?NNN" statements and answers in D1’s shape, with meta', async () => {
    const db = await database();
    await run('d1Exec', db, [
      `CREATE TABLE posts (id serial PRIMARY KEY, title text NOT NULL, body text, views bigint DEFAULT 0);
       -- a comment; with a semicolon
       CREATE INDEX posts_title ON posts (title);`,
    ]);
    const ins = await q(db, 'INSERT INTO posts (title, body) VALUES (?, ?)', ['first', 'what? no']);
    assert.equal(ins.success, true);
    assert.deepEqual(ins.results, []);
    assert.equal(ins.meta.changes, 1);
    assert.equal(ins.meta.last_row_id, 1, 'the serial id the insert drew');
    assert.equal(ins.meta.changed_db, true);
    assert.equal(typeof ins.meta.duration, 'number');
    const second = await q(db, 'INSERT INTO posts (body, title) VALUES (?2, ?1)', ['second', "it's ?1"]);
    assert.equal(second.meta.last_row_id, 2);
    const all = await q(db, "SELECT id, title, body, '?' AS q FROM posts WHERE id >= ? ORDER BY id", [1]);
    assert.deepEqual(all.results, [
      { id: 1, title: 'first', body: 'what? no', q: '?' },
      { id: 2, title: 'second', body: "it's ?1", q: '?' },
    ]);
    assert.deepEqual(all.columns, ['id', 'title', 'body', 'q']);
    assert.equal(all.meta.changes, 0);
    assert.equal(all.meta.rows_read, 2);
    assert.equal(all.meta.changed_db, false);
    const upd = await q(db, 'UPDATE posts SET views = views + ? WHERE id > ?', [5, 0]);
    assert.equal(upd.meta.changes, 2);
    assert.equal(upd.meta.rows_written, 2);
  });

  it('D1: gives count(*), bigint and sums as numbers (as D1 does) while they fit exactly', async () => {
    const db = await database();
    const r = await q(
      db,
      "SELECT count(*) AS n, sum(x) AS total, avg(x) AS mean, 9007199254740993::bigint AS big, '1.10'::numeric AS exact FROM (VALUES (1::bigint), (2)) v(x)",
    );
    assert.deepEqual(r.results[0], { n: 2, total: 3, mean: 1.5, big: '9007199254740993', exact: 1.1 });
  });

  it('D1: batch([...]) runs in one transaction and answers one result per statement', async () => {
    const db = await database();
    await run('d1Exec', db, ['CREATE TABLE acct (id int PRIMARY KEY, balance int CHECK (balance >= 0))']);
    const ok = (await run('d1Batch', db, [
      [
        { sql: 'INSERT INTO acct VALUES (?, ?)', params: [1, 100] },
        { sql: 'INSERT INTO acct VALUES (?, ?)', params: [2, 0] },
        { sql: 'SELECT sum(balance) AS total FROM acct' },
      ],
    ])) as Wire[];
    assert.equal(ok.length, 3);
    assert.equal(ok[0]?.meta.changes, 1);
    assert.equal(ok[0]?.meta.last_row_id, 0, 'no sequence was drawn');
    assert.deepEqual(ok[2]?.results, [{ total: 100 }]);
    await assert.rejects(
      run('d1Batch', db, [
        [
          { sql: 'UPDATE acct SET balance = balance + 50 WHERE id = ?', params: [2] },
          { sql: 'UPDATE acct SET balance = balance - 150 WHERE id = ?', params: [1] },
        ],
      ]),
      isError('ERR_SQL', '23514'),
    );
    const after = await q(db, 'SELECT id, balance FROM acct ORDER BY id');
    assert.deepEqual(after.results, [
      { id: 1, balance: 100 },
      { id: 2, balance: 0 },
    ]);
  });

  it('D1: exec() runs every statement of a text, dollar-quoted bodies intact, and counts them', async () => {
    const db = await database();
    const r = (await run('d1Exec', db, [
      `CREATE TABLE t (v text);
       CREATE FUNCTION shout(s text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN upper(s) || '!'; END; $$;
       INSERT INTO t VALUES ('a;b');;
       INSERT INTO t SELECT shout('c');`,
    ])) as { count: number; duration: number };
    assert.equal(r.count, 4);
    assert.deepEqual((await q(db, 'SELECT v FROM t ORDER BY v')).results, [{ v: 'C!' }, { v: 'a;b' }]);
    await assert.rejects(
      run('d1Exec', db, ["INSERT INTO t VALUES ('x'); INSERT INTO nope VALUES (1);"]),
      isError('ERR_SQL', '42P01'),
    );
    assert.equal((await q(db, 'SELECT count(*) AS n FROM t')).results[0]?.n, 2, 'exec is atomic here');
  });

  it('D1: SQL only SQLite understands fails with an error that says so and names the construct', async () => {
    const db = await database();
    const cases: [string, RegExp][] = [
      ['CREATE TABLE a (id TEXT PRIMARY KEY AUTOINCREMENT, v TEXT)', /AUTOINCREMENT is SQLite/],
      ['PRAGMA foreign_keys = ON', /PRAGMA is SQLite/],
      ["SELECT datetime('now') AS t", /datetime\(\) is SQLite.*now\(\)/],
      ["SELECT strftime('%Y', 'now') AS y", /strftime\(\) is SQLite/],
      ["SELECT name FROM sqlite_master WHERE type = 'table'", /sqlite_master is SQLite/],
    ];
    for (const [sql, message] of cases)
      await assert.rejects(q(db, sql), (err) => {
        assert.ok(isError('ERR_SQL')(err), `${sql}: ${String(err)}`);
        assert.match((err as Error).message, message);
        assert.match((err as Error).message, /PostgreSQL said:/);
        return true;
      });
    // WITHOUT ROWID is translated (dropped: a PostgreSQL table has no rowid).
    await run('d1Exec', db, ['CREATE TABLE b (k TEXT PRIMARY KEY) WITHOUT ROWID']);
    await run('d1Exec', db, ['CREATE TABLE kv (k text PRIMARY KEY, v text)']);
    await assert.rejects(
      q(db, 'INSERT OR REPLACE INTO kv VALUES (?, ?)', ['a', 'b']),
      isError('ERR_SQL', '42601', /INSERT OR REPLACE is SQLite.*ON CONFLICT/),
    );
    // INSERT OR IGNORE is translated (ON CONFLICT DO NOTHING): the second row is skipped, not an error.
    const kept = await q(db, 'INSERT OR IGNORE INTO kv VALUES (?, ?)', ['a', 'b']);
    const skipped = await q(db, 'INSERT OR IGNORE INTO kv VALUES (?, ?) RETURNING v', ['a', 'c']);
    assert.deepEqual([kept.meta.changes, skipped.meta.changes, skipped.results], [1, 0, []]);
    // What drizzle-orm/d1 and drizzle-kit send is translated (sqlite-translate.ts): a rowid alias
    // takes the next id for the NULL drizzle inserts, and an error names what is really wrong.
    await run('d1Exec', db, ['CREATE TABLE `a` (`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, `v` text)']);
    const made = await q(db, 'insert into "a" ("id", "v") values (null, ?), (null, ?) returning "id"', [
      'x',
      'y',
    ]);
    assert.deepEqual(made.results, [{ id: 1 }, { id: 2 }]);
    await assert.rejects(q(db, 'SELECT `v` FROM x'), isError('ERR_SQL', '42P01', /no such table: x/));
    // Valid PostgreSQL is never turned away, even when it names a word SQLite also uses.
    const fine = await q(db, "SELECT 'datetime(now) AUTOINCREMENT' AS s, now() IS NOT NULL AS ok");
    assert.deepEqual(fine.results, [{ s: 'datetime(now) AUTOINCREMENT', ok: true }]);
    // An error that is not about SQLite keeps PostgreSQL's message as it is.
    await assert.rejects(q(db, 'SELECT * FROM missing'), (err: Error) => !/SQLite/.test(err.message));
  });
}
