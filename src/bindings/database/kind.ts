/**
 * The Database kind (PostgreSQL dialect): its installation config, how its providers open, its
 * migrations on apply, and the operations a Database binding may call, interactive transactions
 * included (a transaction belongs to the function that began it). Gathered in ../registry.ts.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { DATABASE } from '../../resources/binding-kinds.js';
import { embeddedDataDir, embeddedSection } from '../embedded-config.js';
import { type BindingKind, type Handles, operations } from '../kind.js';
import { d1ExecStatements, d1Result, d1Statements } from './d1.js';
import { postgresConfigSchema } from './index.js';
import type { DatabaseProvider } from './interface.js';
import { sqlParams } from './params.js';
import { withD1Errors, withSqliteHints } from './sqlite-hints.js';
import { sqliteMigration } from './sqlite-translate.js';

const op = operations<DatabaseProvider>();

/** `backends.database`: embedded (PGlite), or PostgreSQL for a fleet. */
const config = z
  .discriminatedUnion('provider', [embeddedSection, postgresConfigSchema])
  .default({ provider: 'embedded' });

/** One statement's text: at most 1 MiB (PostgreSQL takes more; no function needs it). */
const sqlText = z
  .string()
  .min(1)
  .max(1024 * 1024);
const statement = z.strictObject({ sql: sqlText, params: sqlParams.optional() });
/** Most statements one batch (or one exec() text) may hold. */
const MAX_BATCH = 1000;

/** How long `fn` took, in ms with a fraction (D1's meta.duration). */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, Math.round((performance.now() - started) * 1000) / 1000];
}

/** How long a transaction's handle outlives its time limit when the function never ends it. */
const ABANDONED_HANDLE_MS = 5_000;

/** Throws unless the calling function began the transaction `tx` and has not ended it. */
function mustOwn(handles: Handles, tx: string): void {
  if (!handles.owns(tx))
    throw new KylixError(
      'ERR_BINDING_DENIED',
      'That transaction does not belong to this function (or has ended).',
    );
}

/** See the file comment. */
export const databaseKind = {
  name: DATABASE,
  resourceKind: 'Database',
  config,
  env: { KYLIX_POSTGRES_URL: (url) => ({ provider: 'postgres', url }) },
  async open(c, dataDir) {
    const { createDatabaseProvider } = await import('./index.js');
    return createDatabaseProvider(
      c.provider === 'embedded'
        ? { provider: 'embedded', dataDir: embeddedDataDir(c, dataDir, 'databases') }
        : c,
    );
  },
  /** Applies the migrations not applied before (spec.migrationFiles, read by `kylix apply`). */
  async provision(db, ref, spec) {
    const files = (spec as { migrationFiles?: { name: string; sql: string }[] } | undefined)?.migrationFiles;
    if (!files?.length) return undefined;
    // A wrangler migrations_dir is written for SQLite (drizzle-kit's always is): see sqlite-translate.ts.
    const translated = files.map((f) => ({ name: f.name, sql: sqliteMigration(f.sql) }));
    const ran = await withSqliteHints(
      translated.map((f) => f.sql),
      () => db.migrate(ref, translated),
    );
    return {
      status: { migrations: files.map((f) => f.name) },
      ...(ran.length ? { event: { reason: 'Migrated', message: `Applied ${ran.join(', ')}` } } : {}),
    };
  },
  ops: {
    query: op(z.tuple([statement]), (db, [s], { ref }) => withSqliteHints([s.sql], () => db.query(ref, s))),
    batch: op(z.tuple([z.array(statement).max(MAX_BATCH)]), (db, [list], { ref }) =>
      withSqliteHints(
        list.map((s) => s.sql),
        () => db.batch(ref, list),
      ),
    ),
    /** D1's prepare(sql).bind(...).all()/first()/run()/raw(): `?` placeholders, D1's result shape. */
    d1Query: op(z.tuple([statement]), async (db, [s], { ref }) => {
      // Several statements in one prepare() without bindings (D1 runs them all, as exec() would):
      // one batch, answered with the last one's result.
      const several = s.params?.length ? [] : d1ExecStatements(s.sql);
      const given = several.length > 1 && several.length <= MAX_BATCH ? several : [s];
      const { statements: sts, first } = d1Statements(given);
      const answer = first.at(-1)!;
      if (sts.length > 1) {
        const [rs, ms] = await timed(() =>
          withD1Errors(
            sts.map((x) => x.sql),
            () => db.batch(ref, sts),
          ),
        );
        return d1Result(sts[answer]!, rs[answer]!, ms, db.name);
      }
      const [r, ms] = await timed(() => withD1Errors([sts[0]!.sql], () => db.query(ref, sts[0]!)));
      return d1Result(sts[0]!, r, ms, db.name);
    }),
    /** D1's batch([statements]): every statement in one transaction, one D1 result each. */
    d1Batch: op(z.tuple([z.array(statement).min(1).max(MAX_BATCH)]), async (db, [list], { ref }) => {
      const { statements: sts, first } = d1Statements(list);
      const [rs, ms] = await timed(() =>
        withD1Errors(
          sts.map((s) => s.sql),
          () => db.batch(ref, sts),
        ),
      );
      const each = Math.round((ms / list.length) * 1000) / 1000;
      return first.map((i) => d1Result(sts[i]!, rs[i]!, each, db.name));
    }),
    /** D1's exec(sql): statements separated by ";", without parameters, run as one batch. */
    d1Exec: op(z.tuple([sqlText]), async (db, [sql], { ref }) => {
      const given = d1ExecStatements(sql);
      if (given.length === 0) return { count: 0, duration: 0 };
      if (given.length > MAX_BATCH)
        throw new KylixError(
          'ERR_BINDING_BAD_ARGUMENTS',
          `exec() was given ${given.length} statements; the limit is ${MAX_BATCH}. Split the text.`,
        );
      const { statements: sts } = d1Statements(given, false);
      const [, ms] = await timed(() =>
        withD1Errors(
          sts.map((s) => s.sql),
          () => db.batch(ref, sts),
        ),
      );
      return { count: given.length, duration: ms };
    }),
    begin: op(z.tuple([z.number().int().min(1).max(60_000)]), async (db, [timeoutMs], { ref, handles }) => {
      const tx = await db.begin(ref, timeoutMs);
      // A transaction the function abandons ends at its time limit: its handle goes 5 s
      // later (late calls are told it timed out until then), not never.
      handles.grant(tx, timeoutMs + ABANDONED_HANDLE_MS);
      return tx;
    }),
    queryInTransaction: op(z.tuple([z.string(), statement]), async (db, [tx, s], { handles }) => {
      mustOwn(handles, tx);
      return withSqliteHints([s.sql], () => db.queryInTransaction(tx, s));
    }),
    commit: op(z.tuple([z.string()]), async (db, [tx], { handles }) => {
      mustOwn(handles, tx);
      handles.release(tx);
      return db.commit(tx);
    }),
    rollback: op(z.tuple([z.string()]), async (db, [tx], { handles }) => {
      mustOwn(handles, tx);
      handles.release(tx);
      return db.rollback(tx);
    }),
  },
} satisfies BindingKind<typeof DATABASE, DatabaseProvider, typeof config>;
