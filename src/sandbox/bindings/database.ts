/** env.X for a Database binding: parameterized queries, atomic batches, transactions. */
import { caller, type Rpc } from './common.js';

/** The operations this object calls: the same as the Database kind's (a unit test checks it). */
export const DATABASE_OPS = ['query', 'batch', 'begin', 'queryInTransaction', 'commit', 'rollback'] as const;

/** See the file comment. */
export function databaseBinding(rpc: Rpc, name: string) {
  const call = caller<(typeof DATABASE_OPS)[number]>(rpc, name);
  const query = async (sql: string, params: unknown[] = []) => call('query', [{ sql, params }]);
  return Object.freeze({
    query,
    async batch(statements: { sql: string; params?: unknown[] }[]) {
      return call('batch', [statements.map((s) => ({ sql: s.sql, params: s.params ?? [] }))]);
    },
    /** Runs `fn` in a transaction: committed when it returns, rolled back when it throws. */
    async transaction<T>(
      fn: (tx: { query: typeof query }) => Promise<T>,
      options: { timeoutMs?: number } = {},
    ): Promise<T> {
      const tx = (await call('begin', [options.timeoutMs ?? 10_000])) as string;
      let result: T;
      try {
        result = await fn({
          query: (sql, params = []) => call('queryInTransaction', [tx, { sql, params }]),
        });
      } catch (err) {
        await call('rollback', [tx]).catch(() => undefined);
        throw err;
      }
      await call('commit', [tx]);
      return result;
    },
  });
}
