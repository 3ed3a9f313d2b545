/**
 * The API routes the dashboard adds to the control API. They sit under the same
 * /apis/kylix.dev/v1/namespaces/{ns}/… shape as every other route, so the same token check and
 * role table apply (see control-plane/auth/roles.ts): a view token may read a function's history,
 * the SQL console needs an edit token, like `kylix sql`.
 *  - GET  …/functions/{name}/metrics-history: the last hour of the function's figures (history.ts)
 *  - POST …/databases/{name}/read-query: one statement, in a READ ONLY transaction (read-only-sql.ts)
 * Everything else the page shows comes from the API routes the CLI uses.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Providers } from '../bindings/registry.js';
import { parseBody, readBodyBytes } from '../control-plane/api-input.js';
import type { Registry } from '../control-plane/registry.js';
import { KylixError } from '../errors.js';
import { API_VERSION } from '../resources/meta.js';
import { MAX_ROWS, runReadOnly } from './read-only-sql.js';

export { addDashboardStatic } from './static.js';

/** The history the charts draw from (observability/history.ts's MetricsHistory). */
export interface HistorySource {
  series(namespace: string, name: string): Promise<unknown>;
}

/** What the dashboard's routes read. */
export interface DashboardDeps {
  registry: Registry;
  providers: Providers;
  /** Absent when the node keeps no history: the route then answers 404 with a reason. */
  history?: HistorySource;
}

const PREFIX = `/apis/${API_VERSION}/namespaces/:ns`;

/** Adds the routes above (after the token check, like every API route). */
export function addDashboardRoutes(app: Hono<{ Bindings: HttpBindings }>, deps: DashboardDeps): void {
  app.get(`${PREFIX}/functions/:name/metrics-history`, async (c) => {
    const { ns, name } = c.req.param();
    await deps.registry.get('Function', ns, name);
    if (!deps.history)
      throw new KylixError(
        'ERR_NOT_FOUND',
        'This node keeps no metrics history (it was started without one).',
      );
    const series = await deps.history.series(ns, name);
    return c.json({ kind: 'FunctionMetricsHistory', apiVersion: API_VERSION, ...(series as object) });
  });

  app.post(`${PREFIX}/databases/:name/read-query`, async (c) => {
    const { ns, name } = c.req.param();
    await deps.registry.get('Database', ns, name);
    // Read with the API's body limit, as every other route is.
    const body = parseBody((await readBodyBytes(c)).toString('utf8'), 'json') as {
      sql?: unknown;
      params?: unknown;
    } | null;
    if (typeof body?.sql !== 'string' || body.sql.trim() === '')
      throw new KylixError('ERR_BAD_REQUEST', 'Send { "sql": "SELECT …", "params": [] }.');
    if (body.sql.length > 100_000)
      throw new KylixError('ERR_BAD_REQUEST', 'The statement is longer than 100,000 characters.');
    const params = Array.isArray(body.params) ? body.params : [];
    const result = await runReadOnly(
      await deps.providers.database(),
      { namespace: ns, name },
      body.sql,
      params,
    );
    return c.json({ ...result, maxRows: MAX_ROWS });
  });
}
