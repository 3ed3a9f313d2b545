/**
 * Hostile SQL against both Database providers: a tenant's SQL must not reach another Database,
 * leave session state for the next call, hold another Database past its time, or (on PostgreSQL)
 * act with any privilege beyond its own database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { identifierFor } from '../../src/bindings/database/common.js';
import { openEmbeddedDatabase } from '../../src/bindings/database/embedded.js';
import type { DatabaseProvider } from '../../src/bindings/database/interface.js';
import { openPostgresDatabase } from '../../src/bindings/database/postgres.js';
import type { ResourceRef } from '../../src/bindings/provider.js';
import { isError } from '../bindings/database-conformance.js';
import { reachable } from '../helpers/reachable.js';

const pgUrl = process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the PostgreSQL hostile SQL suite: ${pgDown}`);
const dataDir = mkdtempSync(join(tmpdir(), 'kylix-sql-hostile-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const TIMEOUT_MS = 1500;
const ref = (): ResourceRef => ({ namespace: 'hostile', name: `db-${randomBytes(4).toString('hex')}` });

function isolationSuite(name: string, skip: string | undefined, open: () => Promise<DatabaseProvider>) {
  describe(`hostile SQL: ${name}`, { skip }, () => {
    let p: DatabaseProvider;
    const a = ref();
    const b = ref();
    before(async () => {
      p = await open();
      await p.ensure(a);
      await p.ensure(b);
      await p.query(a, { sql: 'CREATE TABLE secret (v text)' });
      await p.query(a, { sql: "INSERT INTO secret VALUES ('a only')" });
      await p.query(b, { sql: 'CREATE TABLE t (x int)' });
    });
    after(async () => {
      await p.purge(a).catch(() => {});
      await p.purge(b).catch(() => {});
      await p.close();
    });

    it('cannot read or write another Database by name', async () => {
      const other = identifierFor(a);
      for (const sql of [
        `SELECT * FROM ${other}.secret`,
        `SELECT * FROM ${other}.public.secret`,
        `INSERT INTO ${other}.public.secret VALUES ('b was here')`,
        `SELECT * FROM "${other}".secret`,
      ])
        await assert.rejects(p.query(b, { sql }), isError('ERR_SQL'), sql);
      assert.deepEqual((await p.query(a, { sql: 'SELECT v FROM secret' })).rows, [{ v: 'a only' }]);
    });

    it('leaves no session state for the next call: search_path, role, BEGIN, temp tables, prepared statements, advisory locks', async () => {
      await p.query(b, { sql: 'SET search_path TO pg_catalog' });
      assert.equal((await p.query(b, { sql: 'SELECT count(*)::int AS n FROM t' })).rows[0]?.n, 0);
      await p.query(b, { sql: 'SET ROLE NONE' }).catch(() => {});
      await p.query(b, { sql: 'SET application_name = $$x$$' }).catch(() => {});
      assert.notEqual((await p.query(b, { sql: 'SHOW application_name' })).rows[0]?.application_name, 'x');
      await p.query(b, { sql: 'BEGIN' });
      await p.query(b, { sql: 'INSERT INTO t VALUES (1)' });
      await p.query(b, { sql: 'ROLLBACK' }).catch(() => {});
      assert.equal(
        (await p.query(b, { sql: 'SELECT count(*)::int AS n FROM t' })).rows[0]?.n,
        1,
        'a BEGIN left open by one call does not swallow the next call’s write',
      );
      await p.query(b, { sql: 'CREATE TEMP TABLE tt (x int)' });
      await assert.rejects(p.query(b, { sql: 'SELECT * FROM tt' }), isError('ERR_SQL', '42P01'));
      await p.query(b, { sql: 'PREPARE sneaky AS SELECT 1' });
      await assert.rejects(p.query(b, { sql: 'EXECUTE sneaky' }), isError('ERR_SQL', '26000'));
      await p.query(b, { sql: 'SELECT pg_advisory_lock(42)' });
      const held = await p.query(b, {
        sql: "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
      });
      assert.equal(held.rows[0]?.n, 0);
      const tx = await p.begin(b, 5000);
      await p.queryInTransaction(tx, { sql: 'SET search_path TO pg_catalog' });
      await p.commit(tx);
      assert.equal((await p.query(b, { sql: 'SELECT count(*)::int AS n FROM t' })).rows[0]?.n, 1);
    });

    it('refuses SET ROLE and SET SESSION AUTHORIZATION escalation', async () => {
      for (const sql of [
        'SET ROLE postgres',
        'SET SESSION AUTHORIZATION postgres',
        "SELECT set_config('role', 'postgres', false)",
      ])
        await assert.rejects(p.query(b, { sql }), isError('ERR_SQL'), sql);
    });

    it('stops a statement past its time without holding another Database', async () => {
      const long =
        name === 'postgres'
          ? 'SET statement_timeout = 0; SELECT pg_sleep(60)'
          : 'SELECT count(*) FROM generate_series(1, 2000000000)';
      const started = Date.now();
      const slow = p.query(a, { sql: long });
      const quick = await p.query(b, { sql: 'SELECT 1 AS one' });
      assert.equal(quick.rows[0]?.one, 1);
      assert.ok(
        Date.now() - started < TIMEOUT_MS,
        'the other Database answered while the long statement ran',
      );
      await assert.rejects(slow, isError('ERR_TIMEOUT', '57014'));
      assert.ok(Date.now() - started < TIMEOUT_MS + 10_000, 'stopped soon after its time');
      assert.deepEqual((await p.query(a, { sql: 'SELECT v FROM secret' })).rows, [{ v: 'a only' }]);
    });
  });
}

isolationSuite('embedded', undefined, () =>
  openEmbeddedDatabase({ dataDir, statementTimeoutMs: TIMEOUT_MS }),
);
isolationSuite('postgres', pgDown, () =>
  openPostgresDatabase({ url: pgUrl, statementTimeoutMs: TIMEOUT_MS }),
);

describe('hostile SQL: embedded engine walls', () => {
  let p: DatabaseProvider;
  const a = ref();
  before(async () => {
    p = await openEmbeddedDatabase({ dataDir, statementTimeoutMs: TIMEOUT_MS });
    await p.ensure(a);
  });
  after(async () => {
    await p.purge(a);
    await p.close();
  });

  it('refuses statements that reach files, programs, the loader, roles or server settings', async () => {
    for (const sql of [
      "COPY (SELECT 1) TO PROGRAM 'id'",
      "copy (select 1) to '/pglite/data/x'",
      "/* hi */ COPY (SELECT 1) FROM PROGRAM 'id'",
      "SELECT pg_read_file('PG_VERSION')",
      'SELECT "lo_export"(1, \'/tmp/x\')',
      "LOAD '/tmp/evil.so'",
      "CREATE FUNCTION f() RETURNS int AS '/tmp/evil.so', 'f' LANGUAGE C",
      "ALTER SYSTEM SET work_mem = '1GB'",
      'CREATE EXTENSION dblink',
      'LISTEN chan',
      'CREATE ROLE evil SUPERUSER',
      "DO $$ BEGIN COPY (SELECT 1) TO PROGRAM 'id'; END $$",
      'DISCARD ALL',
    ])
      await assert.rejects(p.query(a, { sql }), isError('ERR_SQL', '42501'), sql);
  });

  it('stops dynamic SQL that wedges the engine, reports ERR_TIMEOUT, and reopens the Database', async () => {
    await p.query(a, { sql: 'CREATE TABLE kept (v int)' });
    await p.query(a, { sql: 'INSERT INTO kept VALUES (1)' });
    await assert.rejects(
      p.query(a, {
        sql: "DO $body$ BEGIN EXECUTE 'SET statement' || '_timeout = 0'; LOOP END LOOP; END $body$",
      }),
      isError('ERR_TIMEOUT', '57014'),
    );
    assert.deepEqual((await p.query(a, { sql: 'SELECT v FROM kept' })).rows, [{ v: 1 }]);
  });
});

describe('hostile SQL: postgres privileges', { skip: pgDown }, () => {
  let p: DatabaseProvider;
  const a = ref();
  const b = ref();
  before(async () => {
    p = await openPostgresDatabase({ url: pgUrl, statementTimeoutMs: TIMEOUT_MS });
    await p.ensure(a);
    await p.ensure(b);
  });
  after(async () => {
    await p.purge(a).catch(() => {});
    await p.purge(b).catch(() => {});
    await p.close();
  });

  it('runs tenant SQL as the Database’s own unprivileged role', async () => {
    const r = await p.query(b, {
      sql: 'SELECT current_user AS me, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user',
    });
    assert.deepEqual(r.rows, [
      { me: identifierFor(b), rolsuper: false, rolcreaterole: false, rolcreatedb: false },
    ]);
  });

  it('refuses programs, server files, other databases and new roles', async () => {
    for (const sql of [
      "COPY (SELECT 1) TO PROGRAM 'id'",
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT pg_ls_dir('.')",
      `DROP DATABASE ${identifierFor(a)}`,
      `ALTER DATABASE ${identifierFor(a)} OWNER TO current_user`,
      'CREATE ROLE evil LOGIN SUPERUSER',
      'CREATE ROLE evil LOGIN',
      'CREATE DATABASE evil',
      `GRANT ${identifierFor(a)} TO current_user`,
      'SET ROLE postgres',
    ])
      await assert.rejects(p.query(b, { sql }), isError('ERR_SQL'), sql);
    assert.deepEqual((await p.query(a, { sql: 'SELECT 1 AS up' })).rows, [{ up: 1 }]);
  });

  it('cannot see what other tenants run, nor connect to their databases', async () => {
    const slow = p.query(a, { sql: "SELECT pg_sleep(1) AS secret_query_of_a, 'tenant-a'" });
    await new Promise((r) => setTimeout(r, 200));
    const seen = await p.query(b, {
      sql: "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%secret_query_of_a%' AND pid <> pg_backend_pid()",
    });
    assert.equal(seen.rows[0]?.n, 0);
    await slow;
    const acl = await p.query(b, {
      sql: 'SELECT has_database_privilege($1, $2) AS can FROM (SELECT 1) x',
      params: [identifierFor(a), 'CONNECT'],
    });
    assert.equal(acl.rows[0]?.can, false);
  });

  it('refuses to start with an admin that cannot create roles', async () => {
    const admin = await openPostgresDatabase({ url: pgUrl });
    const weak = `kylix_weak_${randomBytes(3).toString('hex')}`;
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    try {
      await c.query(`CREATE ROLE ${weak} LOGIN`);
      const url = new URL(pgUrl);
      url.username = weak;
      await assert.rejects(
        openPostgresDatabase({ url: url.toString() }),
        isError('ERR_CONFIG_INVALID', undefined, /CREATEROLE/),
      );
    } finally {
      await c.query(`DROP ROLE IF EXISTS ${weak}`).catch(() => {});
      await c.end();
      await admin.close();
    }
  });
});
