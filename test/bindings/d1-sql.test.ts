/**
 * The SQL scanner behind D1-shaped calls: placeholders are translated only in code, statements
 * split only at top-level semicolons, and SQLite-only constructs found only in code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  splitStatements,
  statementVerb,
  translatePlaceholders,
} from '../../src/bindings/database/sql-scan.js';
import { sqliteConstruct } from '../../src/bindings/database/sqlite-hints.js';
import type { KylixError } from '../../src/errors.js';

describe('D1 SQL scanning', () => {
  it('translates ? and ?NNN as SQLite numbers them, outside literals, identifiers and comments', () => {
    assert.equal(translatePlaceholders('SELECT ? , ?, ?'), 'SELECT $1 , $2, $3');
    assert.equal(translatePlaceholders('SELECT ?2, ?, ?1'), 'SELECT $2, $3, $1');
    assert.equal(
      translatePlaceholders(`SELECT '?', E'\\'?', "a?", $q$ ? $q$ /* ? /* ? */ */ -- ?\n, ?`),
      `SELECT '?', E'\\'?', "a?", $q$ ? $q$ /* ? /* ? */ */ -- ?\n, $1`,
    );
    assert.equal(translatePlaceholders('SELECT $1, $2'), 'SELECT $1, $2', 'PostgreSQL placeholders pass');
    assert.throws(
      () => translatePlaceholders('SELECT $1, ?'),
      (e: KylixError) => e.code === 'ERR_BINDING_BAD_ARGUMENTS',
    );
    assert.throws(() => translatePlaceholders('SELECT ?0'), /out of range/);
    assert.throws(() => translatePlaceholders('SELECT ?70000'), /out of range/);
  });

  it('splits statements at top-level semicolons only', () => {
    assert.deepEqual(
      splitStatements(`CREATE TABLE a (v text); -- one; two
        INSERT INTO a VALUES ('x;y');;
        DO $$ BEGIN PERFORM 1; END $$;
        /* ; */`),
      [
        'CREATE TABLE a (v text)',
        "-- one; two\n        INSERT INTO a VALUES ('x;y')",
        'DO $$ BEGIN PERFORM 1; END $$',
      ],
    );
    assert.deepEqual(splitStatements(' ; -- nothing\n'), []);
  });

  it('finds what a statement does, past its CTEs', () => {
    assert.equal(statementVerb('insert into t values (1)'), 'insert');
    assert.equal(statementVerb('WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x'), 'insert');
    assert.equal(statementVerb('WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x'), 'select');
  });

  it('names SQLite-only constructs in code, never in strings or comments', () => {
    assert.equal(
      sqliteConstruct('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)')?.construct,
      'AUTOINCREMENT',
    );
    assert.equal(sqliteConstruct('insert or ignore into t values (1)')?.construct, 'INSERT OR IGNORE');
    assert.equal(sqliteConstruct("SELECT strftime('%s', 'now')")?.construct, 'strftime()');
    assert.equal(sqliteConstruct('SELECT ifnull (a, 0) FROM t')?.construct, 'ifnull()');
    assert.equal(
      sqliteConstruct('SELECT * FROM t WHERE name = ? COLLATE NOCASE')?.construct,
      'COLLATE NOCASE',
    );
    assert.equal(sqliteConstruct('SELECT \'AUTOINCREMENT\', "datetime" -- PRAGMA'), undefined);
    assert.equal(sqliteConstruct('SELECT now(), coalesce(a, 0) FROM t'), undefined);
    assert.equal(sqliteConstruct('CREATE TABLE t (at DATETIME)')?.construct, 'the DATETIME type');
    assert.equal(
      sqliteConstruct('DELETE FROM t WHERE id = ? RETURNING * LIMIT 1')?.construct,
      'DELETE … LIMIT',
    );
    assert.equal(sqliteConstruct('DELETE FROM t WHERE id = 1; SELECT * FROM t LIMIT 1'), undefined);
  });
});
