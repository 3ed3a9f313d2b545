/**
 * Chooses the Database provider from the installation config, validated once. Each provider's
 * module (and its driver: PGlite or pg) is imported only when chosen.
 */
import { z } from 'zod';
import { KylixError } from '../../errors.js';
import { issuesToCauses } from '../../resources/validate.js';
import type { DatabaseProvider } from './interface.js';

/** The PostgreSQL provider's config, as the installation config's `backends.database` takes it too. */
export const postgresConfigSchema = z.strictObject({
  provider: z.literal('postgres'),
  /** postgres://user:password@host:port/database — the database used to create the others. */
  url: z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a postgres:// URL'),
  /** Connections per Database resource (default 5). */
  poolSize: z.number().int().min(1).max(100).optional(),
  /** How long one statement may run before it is cancelled (default 30 s). */
  statementTimeoutMs: z.number().int().min(100).max(900_000).optional(),
});

/** What a Database provider is opened with. */
export const databaseConfigSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('embedded'),
    /** The folder that holds the PGlite data directory. */
    dataDir: z.string().min(1),
  }),
  postgresConfigSchema,
]);

/** A validated database config. */
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;

/** Opens the configured Database provider; a bad config is an ERR_CONFIG_INVALID naming every field. */
export async function createDatabaseProvider(config: unknown): Promise<DatabaseProvider> {
  const result = databaseConfigSchema.safeParse(config);
  if (!result.success)
    throw new KylixError(
      'ERR_CONFIG_INVALID',
      'The database backend config is invalid: use {provider: "embedded", dataDir} or {provider: "postgres", url}.',
      issuesToCauses(result.error.issues, 'database'),
    );
  const c = result.data;
  if (c.provider === 'embedded') {
    const { openEmbeddedDatabase } = await import('./embedded.js');
    return openEmbeddedDatabase({ dataDir: c.dataDir });
  }
  const { openPostgresDatabase } = await import('./postgres.js');
  return openPostgresDatabase({ url: c.url, poolSize: c.poolSize, statementTimeoutMs: c.statementTimeoutMs });
}
