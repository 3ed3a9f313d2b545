/**
 * Scenario 2, a small Hono app (routing + JSON): on Kylix, on workerd, and on @hono/node-server as
 * the raw baseline; the same comparison as hello world.
 */
import { join } from 'node:path';
import { compareThroughput } from '../lib/compare.js';
import { ROOT } from '../lib/kylix.js';
import type { Scenario } from '../lib/scenario.js';

const FIXTURES = join(ROOT, 'bench', 'fixtures', 'hono');

/** See the file comment. */
export const hono: Scenario = {
  id: 2,
  name: 'hono',
  title: 'Hono app (routing + JSON) throughput and latency',
  async run(ctx) {
    const result = await compareThroughput(ctx, {
      workload: {
        module: join(FIXTURES, 'app.ts'),
        manifests: FIXTURES,
        rawServer: join(FIXTURES, 'raw-server.ts'),
        path: '/api/users/42',
        body: JSON.stringify({ id: '42', name: 'Grace', roles: ['reader', 'writer'] }),
      },
      rawLabel: 'raw @hono/node-server',
      // Issue 10's target for the Hono app: at least workerd's throughput.
      goals: { vsWorkerd: 1.0 },
    });
    result.notes.unshift(
      `GET /api/users/42 (a route with a parameter, JSON body), ${ctx.config.connections} connections, ${ctx.config.warmupS} s warm-up + ${ctx.config.durationS} s measured per round, ${ctx.config.rounds} round(s) per server, alternating.`,
    );
    return result;
  },
};
