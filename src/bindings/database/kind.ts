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
import { postgresConfigSchema } from './index.js';
import type { DatabaseProvider } from './interface.js';

const op = operations<DatabaseProvider>();

/** `backends.database`: embedded (PGlite), or PostgreSQL for a fleet. */
const config = z
  .discriminatedUnion('provider', [embeddedSection, postgresConfigSchema])
  .default({ provider: 'embedded' });

const statement = z.strictObject({ sql: z.string().min(1), params: z.array(z.unknown()).optional() });

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
    const ran = await db.migrate(ref, files);
    return {
      status: { migrations: files.map((f) => f.name) },
      ...(ran.length ? { event: { reason: 'Migrated', message: `Applied ${ran.join(', ')}` } } : {}),
    };
  },
  ops: {
    query: op(z.tuple([statement]), (db, [s], { ref }) => db.query(ref, s)),
    batch: op(z.tuple([z.array(statement).max(1000)]), (db, [list], { ref }) => db.batch(ref, list)),
    begin: op(z.tuple([z.number().int().min(1).max(60_000)]), async (db, [timeoutMs], { ref, handles }) => {
      const tx = await db.begin(ref, timeoutMs);
      handles.grant(tx);
      return tx;
    }),
    queryInTransaction: op(z.tuple([z.string(), statement]), async (db, [tx, s], { handles }) => {
      mustOwn(handles, tx);
      return db.queryInTransaction(tx, s);
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
