/**
 * Scenario 5, density: memory (RSS, and PSS, of the platform process plus its sandbox processes,
 * from /proc) 1. of the bare platform, 2. with one warm function, 3. with W more warm instances
 * (each has served a request), which gives memory per warm instance, and 4. idle with N deployed
 * functions, once the platform has scaled every one of them to zero.
 */
import { join } from 'node:path';
import {
  applyObject,
  bundle,
  functionObject,
  instanceCount,
  listUrl,
  uploadBundle,
  waitAllReady,
} from '../lib/api.js';
import { ROOT, startKylix } from '../lib/kylix.js';
import { loadTest } from '../lib/load.js';
import { memAvailableGiB, type TreeMemory, treeMemory } from '../lib/memory.js';
import type { Scenario } from '../lib/scenario.js';

const MODULE = join(ROOT, 'bench', 'fixtures', 'hello', 'hello.ts');
/** Applies (and stats reads) in flight at once: more makes deploys on one core slower than the platform's 1 s start-up limit. */
const CONCURRENCY = 2;
/** Functions deployed between two checks of free memory. */
const CHUNK = 50;
/** Stop deploying when less than this much memory is available, so the machine never swaps or OOMs. */
const MIN_AVAILABLE_GIB = 4;
/** The process tree counts as settled when its size has not changed for this long. */
const PROCESS_STABLE_MS = 40_000;
/** spec.scaling.idleSeconds of the warm functions: long enough to measure them, short enough to wait out. */
const WARM_IDLE_SECONDS = 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const name = (i: number) => `fn-${i}`;

/** Runs `task(i)` for i in from..to, CONCURRENCY at a time. */
async function forRange(from: number, to: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  const worker = async () => {
    while (next <= to) await task(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Sends one request to each function `from`..`to`, so each has a warm instance that has served. */
async function warmRange(
  gatewayUrl: string,
  from: number,
  to: number,
  skip: Map<string, string>,
): Promise<void> {
  for (let i = from; i <= to; i++) {
    if (skip.has(name(i))) continue;
    const res = await fetch(`${gatewayUrl}/${name(i)}`);
    const body = await res.text();
    // A function that cannot start is a finding, not the end of the scenario.
    if (res.status !== 200)
      skip.set(name(i), `warm-up request answered ${res.status}: ${body.slice(0, 200)}`);
  }
}

/** Instances running over functions 1..n, read from the stats API. */
async function runningInstances(apiUrl: string, n: number): Promise<number> {
  let total = 0;
  await forRange(1, n, async (i) => {
    const count = await instanceCount(apiUrl, name(i));
    total += count;
  });
  return total;
}

function brief(m: TreeMemory): { rssMiB: number; pssMiB: number; processes: number } {
  return { rssMiB: m.rssMiB, pssMiB: m.pssMiB, processes: m.pids.length };
}

/** See the file comment. */
export const density: Scenario = {
  id: 5,
  name: 'density',
  title: 'Density (memory)',
  async run(ctx) {
    const total = Math.max(2, ctx.config.densityFunctions);
    const warm = Math.min(ctx.config.densityWarm, total - 1);
    const node = await startKylix({ cpus: ctx.cores.server });
    try {
      const code = await bundle(MODULE);
      await uploadBundle(node.apiUrl, code);
      const pid = node.child.pid;
      const settle = async () => {
        await sleep(2000);
        return treeMemory(pid);
      };
      const deploy = (from: number, to: number, scaling?: { idleSeconds: number }) =>
        forRange(from, to, async (i) => {
          await applyObject(
            node.apiUrl,
            'functions',
            functionObject(name(i), `/${name(i)}`, code.digest, scaling),
          );
        });
      const warmScaling = { idleSeconds: WARM_IDLE_SECONDS };
      const failed = new Map<string, string>();

      // 1. The bare platform, then one warm function (the sandbox process starts with it).
      const empty = treeMemory(pid);
      await deploy(1, 1, warmScaling);
      await waitAllReady(node.apiUrl, 1, 30_000, failed);
      await warmRange(node.gatewayUrl, 1, 1, failed);
      const one = await settle();
      ctx.log(`1 warm function: RSS ${one.rssMiB} MiB (${one.pids.length} processes)`);

      // 2. W more, each warm.
      let t0 = performance.now();
      await deploy(2, warm + 1, warmScaling);
      await waitAllReady(node.apiUrl, warm + 1, 60_000 + warm * 500, failed);
      await warmRange(node.gatewayUrl, 2, warm + 1, failed);
      const warmed = await settle();
      const warmRunning = await runningInstances(node.apiUrl, warm + 1);
      // Functions that failed to start hold no instance: divide by the instances that run.
      const warmOk = Math.max(1, warmRunning - 1);
      const perInstanceRss = (warmed.rssMiB - one.rssMiB) / warmOk;
      const perInstancePss = (warmed.pssMiB - one.pssMiB) / warmOk;
      const warmedAt = Date.now();
      ctx.log(
        `${warm + 1} warm (${warmRunning} instances): RSS ${warmed.rssMiB} MiB → ${perInstanceRss.toFixed(2)} MiB per instance`,
      );

      // 3. Up to N deployed (default scaling), in chunks while memory lasts.
      t0 = performance.now();
      let deployed = warm + 1;
      let peakRss = warmed.rssMiB;
      let stoppedEarly: string | undefined;
      while (deployed < total) {
        const available = memAvailableGiB();
        if (available < MIN_AVAILABLE_GIB) {
          stoppedEarly = `stopped at ${deployed} of ${total} functions: only ${available.toFixed(1)} GiB of memory was left available (the bench keeps ${MIN_AVAILABLE_GIB} GiB free)`;
          ctx.log(stoppedEarly);
          break;
        }
        const to = Math.min(total, deployed + CHUNK);
        await deploy(deployed + 1, to);
        await waitAllReady(node.apiUrl, to, 120_000 + CHUNK * 1000, failed);
        deployed = to;
        const rss = treeMemory(pid).rssMiB;
        peakRss = Math.max(peakRss, rss);
        if (deployed % 200 === 0 || deployed === total)
          ctx.log(`${deployed} deployed (${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${rss} MiB)`);
      }
      const restDeployS = (performance.now() - t0) / 1000;

      // 4. Idle: wait until the platform has stopped every instance, then measure.
      const waitStart = performance.now();
      await sleep(Math.max(0, warmedAt + WARM_IDLE_SECONDS * 1000 - Date.now()));
      let running = await runningInstances(node.apiUrl, deployed);
      while (running > 0 && performance.now() - waitStart < 240_000) {
        ctx.log(`waiting for scale to zero: ${running} instances still running`);
        await sleep(5000);
        running = await runningInstances(node.apiUrl, deployed);
      }
      const zeroAfterS = (performance.now() - waitStart) / 1000;
      // Sandbox processes outlive their last instance for a while: wait until the tree stops shrinking.
      let processes = treeMemory(pid).pids.length;
      let stableSince = performance.now();
      while (performance.now() - stableSince < PROCESS_STABLE_MS && performance.now() - waitStart < 300_000) {
        await sleep(2000);
        const now = treeMemory(pid).pids.length;
        if (now !== processes) {
          processes = now;
          stableSince = performance.now();
        }
      }
      const idleWaitS = (performance.now() - waitStart) / 1000;
      const idle = await settle();
      ctx.log(`${deployed} deployed, ${running} instances: RSS ${idle.rssMiB} MiB`);

      // The list API with N real functions (control plane, measured here too).
      const list = await loadTest(listUrl(node.apiUrl, 'functions'), {
        connections: 1,
        amount: ctx.config.listRequests,
        cpus: ctx.cores.client,
      });

      const r1 = (n: number) => Math.round(n * 10) / 10;
      const r2 = (n: number) => Math.round(n * 100) / 100;
      return {
        metrics: [
          { name: 'platform alone (no function): RSS', value: empty.rssMiB, unit: 'MiB' },
          { name: '1 warm function: RSS (platform + sandbox)', value: one.rssMiB, unit: 'MiB' },
          { name: `${warm + 1} warm instances: RSS`, value: warmed.rssMiB, unit: 'MiB' },
          { name: 'memory per warm instance (RSS)', value: r2(perInstanceRss), unit: 'MiB' },
          { name: 'memory per warm instance (PSS)', value: r2(perInstancePss), unit: 'MiB' },
          { name: `idle, ${deployed} deployed, ${running} instances: RSS`, value: idle.rssMiB, unit: 'MiB' },
          { name: `idle, ${deployed} deployed, ${running} instances: PSS`, value: idle.pssMiB, unit: 'MiB' },
          { name: 'idle: processes (platform, sandboxes, bubblewrap)', value: processes, unit: '' },
          { name: 'peak RSS while deploying', value: peakRss, unit: 'MiB' },
          { name: 'deploys that failed to start', value: failed.size, unit: '' },
          {
            name: `deploy rate (functions ${warm + 2}..${deployed})`,
            value: r1(deployed > warm + 1 ? (deployed - warm - 1) / restDeployS : Number.NaN),
            unit: 'functions/s',
          },
          {
            name: `list ${deployed} functions: p99`,
            value: list.p99,
            unit: 'ms',
            target: { op: '<=', value: 100 },
          },
        ],
        details: {
          functions: { asked: total, deployed },
          warm: { functions: warm + 1, instances: warmRunning },
          failed: Object.fromEntries(failed),
          memory: { empty: brief(empty), one, warmed, idle },
          instancesWhenIdle: running,
          seconds: { deployRest: r1(restDeployS), zeroInstances: r1(zeroAfterS), waitForIdle: r1(idleWaitS) },
          list,
        },
        notes: [
          `Memory is the sum over the platform process and its descendants (the sandbox processes, one per revision with instances or recently used plus a spare, under bubblewrap where it runs, each instance a worker thread; the esbuild service is not started, as the bench uploads bundles itself) of VmRSS from /proc/<pid>/status and Pss from /proc/<pid>/smaps_rollup, read 2 s after the last change. Per warm instance = (RSS with ${warm + 1} warm − RSS with 1) / (instances running then − 1) = / ${warmOk}.`,
          `The ${warm + 1} warm functions have spec.scaling.idleSeconds: ${WARM_IDLE_SECONDS} (so the bench can wait them out); the other ${deployed - warm - 1} have the default scaling, so each keeps its deploy's proof-of-start instance for 30 s unless it serves. "Idle" is read once the stats API showed ${running} running instances over all ${deployed} functions (after ${r1(zeroAfterS)} s) and the number of processes had then stayed at ${processes} for ${PROCESS_STABLE_MS / 1000} s (${r1(idleWaitS)} s of waiting in all). Functions were applied through the REST API, ${CONCURRENCY} at a time, all with the same small bundle.`,
          `List: ${ctx.config.listRequests} sequential GETs of the functions list (1 connection, autocannon) with ${deployed} deployed functions; p50 ${list.p50} ms.`,
          ...(stoppedEarly ? [`Fewer functions than asked: ${stoppedEarly}.`] : []),
          ...(failed.size
            ? [
                `${failed.size} deploys FAILED (counted as deployed, never warm): ${[...new Set(failed.values())].slice(0, 3).join(' | ')}`,
              ]
            : []),
        ],
      };
    } finally {
      await node.stop();
    }
  },
};
