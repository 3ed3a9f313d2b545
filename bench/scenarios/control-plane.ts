/**
 * Scenario 8, control plane: 1. server-side apply of N KeyValue objects through the REST API, one
 * after another on one connection (as kubectl and `kylix apply` do); 2. the same through the CLI, one
 * `kylix apply -f` of a file with N documents; 3. N Function objects; 4. list latency with N
 * functions present.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyObject, functionObject, listUrl } from '../lib/api.js';
import { kylixApply, startKylix } from '../lib/kylix.js';
import { loadTest } from '../lib/load.js';
import type { Scenario } from '../lib/scenario.js';
import { since, summarize } from '../lib/stats.js';

async function applyAll(
  apiUrl: string,
  plural: string,
  objects: { kind: string; metadata: { name: string } }[],
): Promise<{ totalMs: number; each: number[] }> {
  const each: number[] = [];
  const t0 = performance.now();
  for (const o of objects) {
    const t = performance.now();
    await applyObject(apiUrl, plural, o);
    each.push(since(t));
  }
  return { totalMs: since(t0), each };
}

/** See the file comment. */
export const controlPlane: Scenario = {
  id: 8,
  name: 'control-plane',
  title: 'Control plane',
  async run(ctx) {
    const n = ctx.config.resources;
    const node = await startKylix({ cpus: ctx.cores.server });
    try {
      // 1. REST: N KeyValues.
      const kvs = Array.from({ length: n }, (_, i) => ({
        kind: 'KeyValue',
        metadata: { name: `kv-${i}` },
        spec: {},
      }));
      const rest = await applyAll(node.apiUrl, 'keyvalues', kvs);
      ctx.log(`REST apply of ${n} KeyValues: ${Math.round(rest.totalMs)} ms`);

      // 2. CLI: one file of N KeyValue documents.
      const dir = join(ctx.tmpDir, 'manifests');
      const docs = Array.from(
        { length: n },
        (_, i) => `apiVersion: kylix.dev/v1\nkind: KeyValue\nmetadata:\n  name: kv-cli-${i}\nspec: {}\n`,
      );
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'kv.yaml'), docs.join('---\n'));
      const t0 = performance.now();
      await kylixApply(node, dir, ctx.cores.client);
      const cliMs = since(t0);
      ctx.log(`kylix apply -f of ${n} KeyValues: ${Math.round(cliMs)} ms`);

      // 3. REST: N Functions (no code uploaded, so no instances: this measures the control plane alone).
      const fns = Array.from({ length: n }, (_, i) => functionObject(`cp-${i}`, `/cp-${i}`));
      const fnApply = await applyAll(node.apiUrl, 'functions', fns);
      ctx.log(`REST apply of ${n} Functions: ${Math.round(fnApply.totalMs)} ms`);

      // 4. List with N functions.
      const list = await loadTest(listUrl(node.apiUrl, 'functions'), {
        connections: 1,
        amount: ctx.config.listRequests,
        cpus: ctx.cores.client,
      });
      ctx.log(`list ${n} functions: p50 ${list.p50} ms, p99 ${list.p99} ms`);

      const kv = summarize(rest.each);
      const fn = summarize(fnApply.each);
      const r0 = (x: number) => Math.round(x);
      return {
        metrics: [
          {
            name: `apply ${n} KeyValues (REST, sequential): total`,
            value: r0(rest.totalMs),
            unit: 'ms',
            target: { op: '<=', value: 5000 },
          },
          { name: 'apply one KeyValue: p50', value: kv.p50, unit: 'ms' },
          { name: 'apply one KeyValue: p99', value: kv.p99, unit: 'ms' },
          { name: `\`kylix apply -f\` of ${n} KeyValues: total`, value: r0(cliMs), unit: 'ms' },
          { name: `apply ${n} Functions (REST, sequential): total`, value: r0(fnApply.totalMs), unit: 'ms' },
          { name: 'apply one Function: p50', value: fn.p50, unit: 'ms' },
          { name: 'apply one Function: p99', value: fn.p99, unit: 'ms' },
          { name: `list ${n} functions: p50`, value: list.p50, unit: 'ms' },
          { name: `list ${n} functions: p99`, value: list.p99, unit: 'ms', target: { op: '<=', value: 100 } },
        ],
        details: {
          resources: n,
          keyValueApplyMs: rest.each,
          functionApplyMs: fnApply.each,
          cliMs,
          list,
          summaries: { kv, fn },
        },
        notes: [
          `Applies are PATCH application/apply-patch+yaml at /apis/kylix.dev/v1/namespaces/default/<plural>/<name>, one after another from the bench process over a keep-alive connection, each acknowledged only after the store's fsync. The CLI line is one \`kylix apply -f\` process (Node start-up, parse and validate ${n} documents, ${n} PATCHes).`,
          `The ${n} Functions have routes but no uploaded code, so no instance starts (their status says NoBundle): the figures are the control plane's (validation, route-conflict admission, store, status write by the controller). The density scenario lists functions that do run.`,
          `List: ${ctx.config.listRequests} sequential GETs (1 connection, autocannon in its own process) of the functions list with ${n} functions.`,
        ],
      };
    } finally {
      await node.stop();
    }
  },
};
