/**
 * Hostile D1 statements against the SQLite translation (bindings/database/sqlite-translate.ts),
 * which runs on the supervisor's thread for every D1 call of every tenant: a statement of the
 * largest size a call may carry (1 MiB) must be translated in time linear in its length, or one
 * tenant's single prepare() stalls the node's gateway and every other tenant's bindings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { d1Statements } from '../../src/bindings/database/d1.js';
import { sqliteMigration } from '../../src/bindings/database/sqlite-translate.js';

const MIB = 1024 * 1024;
/** `unit` repeated to about 1 MiB. */
const fill = (unit: string) => unit.repeat(Math.floor(MIB / unit.length));

/** Pathological token streams, each one statement of about 1 MiB. */
const STATEMENTS: Record<string, string> = {
  'unclosed calls, nested': `SELECT ${fill('f(')}`,
  'ON CONFLICT targets, nested and unclosed': `SELECT ${fill('on conflict (')}`,
  'json_array calls, nested': `SELECT ${fill('json_array(')}`,
  'unixepoch() calls': `SELECT ${fill('unixepoch(),')} 1`,
  'a column of PRIMARY words': `CREATE TABLE \`t\` (a integer ${fill('primary ')})`,
  'an ON CONFLICT target of comments': `INSERT INTO t VALUES (1) ON CONFLICT (a ${fill('/**/ ')})`,
};

describe('hostile: SQLite translation of huge statements', () => {
  for (const [name, sql] of Object.entries(STATEMENTS)) {
    it(`translates ${name} (1 MiB) in linear time`, () => {
      const started = performance.now();
      d1Statements([{ sql }]);
      sqliteMigration(sql);
      const ms = performance.now() - started;
      // Linear: well under a second here. Before the fix each took from minutes to hours.
      assert.ok(ms < 10_000, `${name} took ${Math.round(ms)} ms`);
    });
  }

  it('still translates what it translated before', () => {
    const { statements } = d1Statements([
      { sql: 'INSERT INTO `t` (`a`) VALUES (unixepoch()) ON CONFLICT ("t"."a") DO NOTHING' },
      {
        sql: 'SELECT json_array(1, null), json_array(1 ABSENT ON NULL), json_group_array(json_array(x)) FROM t',
      },
    ]);
    assert.equal(
      statements[0]?.sql,
      'INSERT INTO "t" ("a") VALUES ((floor(extract(epoch from now()))::bigint)) ON CONFLICT ("a") DO NOTHING',
    );
    assert.equal(
      statements[1]?.sql,
      'SELECT json_build_array(1, null), json_array(1 ABSENT ON NULL), json_agg(json_build_array(x)) FROM t',
    );
  });
});
