/**
 * Scenario 1, hello world: the same fetch-handler module through the Kylix gateway and sandbox, on
 * workerd, and a raw node:http server answering the same body; throughput, latency and ratios.
 */
import { join } from 'node:path';
import { compareThroughput } from '../lib/compare.js';
import { ROOT } from '../lib/kylix.js';
import type { Scenario } from '../lib/scenario.js';

const FIXTURES = join(ROOT, 'bench', 'fixtures', 'hello');

/** See the file comment. */
export const hello: Scenario = {
  id: 1,
  name: 'hello',
  title: 'Hello world throughput and latency',
  async run(ctx) {
    const result = await compareThroughput(ctx, {
      workload: {
        module: join(FIXTURES, 'hello.ts'),
        manifests: FIXTURES,
        rawServer: join(FIXTURES, 'raw-server.ts'),
        path: '/hello',
        body: 'Hello, world!\n',
      },
      rawLabel: 'raw node:http',
      // Issue 10's targets: at least workerd's throughput and 0.35 x raw node:http, p99 <= 5 ms, <= 60 us CPU.
      goals: { vsRaw: 0.35, vsWorkerd: 1.0, p99Ms: 5, cpuUsPerRequest: 60 },
    });
    result.notes.unshift(
      `GET /hello, ${ctx.config.connections} connections, ${ctx.config.warmupS} s warm-up + ${ctx.config.durationS} s measured per round, ${ctx.config.rounds} round(s) per server, servers alternating; figures are the mean of the rounds.`,
    );
    return result;
  },
};
