/**
 * Scenario 4, deploy to live: change a constant in the function's code, run `kylix apply -f` (the
 * CLI, as its own process), and time from the moment apply returns to the first 200 that carries the
 * new body. The whole apply (CLI start, bundle, upload, wait for ready) is reported alongside.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kylixApply, ROOT, startKylix } from '../lib/kylix.js';
import { loadTest, waitForBody } from '../lib/load.js';
import type { Scenario } from '../lib/scenario.js';
import { since, summarize } from '../lib/stats.js';

const FIXTURES = join(ROOT, 'bench', 'fixtures', 'deploy');

/** See the file comment. */
export const deploy: Scenario = {
  id: 4,
  name: 'deploy',
  title: 'Deploy to live',
  async run(ctx) {
    const dir = join(ctx.tmpDir, 'deploy');
    cpSync(FIXTURES, dir, { recursive: true });
    const source = join(dir, 'deploy.ts');
    const template = readFileSync(source, 'utf8');
    const node = await startKylix({ cpus: ctx.cores.server });
    try {
      const url = `${node.gatewayUrl}/deploy`;
      await kylixApply(node, dir, ctx.cores.client);
      await waitForBody(url, 'version v0\n', 30_000);

      const toLive: number[] = [];
      const applyMs: number[] = [];
      const total: number[] = [];
      const next: number[] = [];
      let stale = 0;
      for (let i = 1; i <= ctx.config.deploys; i++) {
        const version = `v${i}-${Math.random().toString(36).slice(2, 8)}`;
        writeFileSync(source, template.replace(/const VERSION = '[^']*';/, `const VERSION = '${version}';`));
        const expected = `version ${version}\n`;
        const t0 = performance.now();
        await kylixApply(node, dir, ctx.cores.client);
        const returned = performance.now();
        for (;;) {
          const res = await fetch(url);
          const body = await res.text();
          if (res.status === 200 && body === expected) break;
          stale++;
          if (since(returned) > 30_000)
            throw new Error(`deploy ${i}: the new body never came (last: ${res.status} ${body})`);
        }
        toLive.push(since(returned));
        applyMs.push(returned - t0);
        total.push(since(t0));
        const t1 = performance.now();
        await (await fetch(url)).text();
        next.push(since(t1));
      }
      ctx.log(
        `${ctx.config.deploys} deploys: apply returns → new body p50 ${summarize(toLive).p50} ms; whole apply p50 ${summarize(applyMs).p50} ms`,
      );
      // Under a steady 1,000 requests/s: deploy three new revisions; every request must succeed.
      const underLoad = loadTest(url, { connections: 32, durationS: 8, rate: 1000, cpus: ctx.cores.client });
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 1; i <= 3; i++) {
        writeFileSync(source, template.replace(/const VERSION = '[^']*';/, `const VERSION = 'load-${i}';`));
        await kylixApply(node, dir, ctx.cores.client);
      }
      const loaded = await underLoad;
      const failed = loaded.non2xx + loaded.errors + loaded.timeouts;
      ctx.log(`3 deploys under ${loaded.rps} req/s: ${loaded.ok} ok, ${failed} failed`);

      const live = summarize(toLive);
      const apply = summarize(applyMs);
      const all = summarize(total);
      const second = summarize(next);
      return {
        metrics: [
          {
            name: 'apply returns → first 200 with new body: p50',
            value: live.p50,
            unit: 'ms',
            target: { op: '<=', value: 500 },
          },
          { name: 'apply returns → first 200 with new body: p99', value: live.p99, unit: 'ms' },
          { name: 'the request after that (same new instance): p50', value: second.p50, unit: 'ms' },
          { name: '`kylix apply` command duration: p50', value: apply.p50, unit: 'ms' },
          { name: 'apply start → first 200 with new body: p50', value: all.p50, unit: 'ms' },
          { name: '3 deploys under load: requests/s held', value: loaded.rps, unit: 'req/s' },
          {
            name: '3 deploys under load: failed requests',
            value: failed,
            unit: '',
            target: { op: '<=', value: 0 },
          },
        ],
        details: {
          toLiveMs: toLive,
          applyMs,
          totalMs: total,
          nextMs: next,
          staleResponses: stale,
          summaries: { live, apply, all, second },
        },
        notes: [
          `${ctx.config.deploys} deploys, each changing a constant in the body. \`kylix apply -f\` runs as its own process (Node start-up, esbuild bundle, upload, PATCH, then it polls status every 25 ms until the new revision is ready); it already waits for the revision, so "apply returns → first 200" is one request to the gateway (${stale} stale responses seen in all), the first one the new instance serves; the request after it shows what a warmed-up instance answers in. "apply start → first 200" is the whole user-visible deploy, for reference (no target in the issue).`,
        ],
      };
    } finally {
      await node.stop();
    }
  },
};
