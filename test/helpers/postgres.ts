/**
 * Scratch installations on the test PostgreSQL server: each test that uses the PostgreSQL state
 * store gets a schema of its own, dropped when the file's tests end.
 */
import { randomUUID } from 'node:crypto';
import { after } from 'node:test';

/** The test server (trust auth on this machine kind); KYLIX_TEST_POSTGRES_URL overrides it. */
export const TEST_POSTGRES_URL =
  process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const created: string[] = [];
// Registered when a test file imports this module, so it runs after all of that file's tests.
after(dropScratchSchemas);

/** A fresh schema name; it is dropped (with everything in it) after the importing file's tests. */
export function scratchSchema(prefix = 'kylix_test'): string {
  const schema = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  created.push(schema);
  return schema;
}

async function dropScratchSchemas(): Promise<void> {
  if (created.length === 0) return;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  try {
    await client.connect();
    for (const s of created.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } catch {
    // The server is gone: the suites that needed it were skipped.
  } finally {
    await client.end().catch(() => {});
  }
}
