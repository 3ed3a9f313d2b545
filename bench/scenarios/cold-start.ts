/**
 * Scenario 3, cold start, measured three ways (A2 added once each revision got its own process):
 *  A. scale from zero: K probe functions with spec.scaling.idleSeconds = 1; the bench waits until
 *     the platform has stopped every instance (its stats API says 0), then times one request to
 *     each, in turn. Each of those requests finds no instance: the revision's sandbox process is
 *     still up with a warm (pre-started, pre-warmed) worker, which loads the bundle and serves.
 *     Repeated N times.
 *  A2. after a long idle: N functions left until their sandbox processes closed as well, then one
 *     request each: a process is taken (the spare) or started, then the worker, then the bundle.
 *  B. apply → first 200 for N distinct new functions (admission, revision, instance start, routing).
 * All are timed by the bench as a client; the platform's own record of each cold start (how long
 * the request waited for its instance) is read back from the stats API too.
 */
import { join } from 'node:path';
import {
  applyObject,
  bundle,
  functionObject,
  functionStats,
  instanceCount,
  uploadBundle,
  waitAllReady,
} from '../lib/api.js';
import { ROOT, startKylix } from '../lib/kylix.js';
import type { Scenario } from '../lib/scenario.js';
import { since, summarize } from '../lib/stats.js';

const PROBE = join(ROOT, 'bench', 'fixtures', 'cold', 'cold.ts');
const BODY = 'cold ok\n';
/** Probe functions cycled through in scenario A. */
const PROBES = 10;
/** A revision's sandbox process stays up 10 s after its last instance; wait that out, with margin. */
const PROCESS_IDLE_WAIT_MS = 15_000;
/**
 * How long after the last scale-down scenario A waits before its requests: each idle revision's
 * process warms a worker in the background (~100 ms of CPU; ten at once take ~1 s of the core).
 */
const SETTLE_MS = 2000;
/** Pause between the long-idle cold starts. */
const SPACING_MS = 1000;

async function timedGet(url: string): Promise<{ ms: number; status: number; body: string }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const body = await res.text();
  return { ms: since(t0), status: res.status, body };
}

/** Resolves once none of `names` has a running instance. */
async function waitForZero(apiUrl: string, names: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const counts = await Promise.all(names.map((n) => instanceCount(apiUrl, n)));
    if (counts.every((c) => c === 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the probe functions did not scale to zero within ${timeoutMs} ms`);
}

/** Polls `url` until it answers 200 with `body`; resolves with the number of polls. */
async function pollUntil(url: string, body: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1; Date.now() < deadline; polls++) {
    const res = await fetch(url);
    const text = await res.text();
    if (res.status === 200 && text === body) return polls;
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** See the file comment. */
export const coldStart: Scenario = {
  id: 3,
  name: 'cold-start',
  title: 'Cold start',
  async run(ctx) {
    const n = ctx.config.coldStarts;
    const node = await startKylix({ cpus: ctx.cores.server });
    try {
      const code = await bundle(PROBE);
      await uploadBundle(node.apiUrl, code);

      // A. scale from zero.
      const probes = Array.from({ length: Math.min(PROBES, n) }, (_, i) => `bench-cold-${i}`);
      for (const name of probes) {
        await applyObject(
          node.apiUrl,
          'functions',
          functionObject(name, `/${name}`, code.digest, { idleSeconds: 1 }),
        );
      }
      await waitAllReady(node.apiUrl, probes.length, 60_000);
      // The deploy's proof-of-start instance has served nothing: send one request so each probe
      // has served before, as a function that went idle has.
      for (const name of probes) await timedGet(`${node.gatewayUrl}/${name}`);
      // One round right at scale-to-zero, while every probe's process is still warming a worker
      // in the background (reported, no target): the requests compete with those warm-ups.
      const atZero: number[] = [];
      await waitForZero(node.apiUrl, probes, 30_000);
      for (const name of probes) atZero.push((await timedGet(`${node.gatewayUrl}/${name}`)).ms);
      const cold: number[] = [];
      const warm: number[] = [];
      while (cold.length < n) {
        await waitForZero(node.apiUrl, probes, 30_000);
        // Scaled to zero, and the platform's background work after the scale-down (a warm worker
        // per idle process) has had time to finish, as when a function is next called later.
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        for (const name of probes) {
          if (cold.length >= n) break;
          const first = await timedGet(`${node.gatewayUrl}/${name}`);
          if (first.status !== 200 || first.body !== BODY)
            throw new Error(`${name} answered ${first.status}: ${first.body}`);
          cold.push(first.ms);
          warm.push((await timedGet(`${node.gatewayUrl}/${name}`)).ms);
        }
      }
      const recordedCold = (await Promise.all(probes.map((p) => functionStats(node.apiUrl, p)))).flat();
      const platformColdStarts = recordedCold.reduce((s, r) => s + r.coldStarts, 0);
      ctx.log(`A. ${n} cold starts, instance gone: p50 ${summarize(cold).p50} ms`);

      // A2. after a long idle: no instance and no sandbox process left for the revision.
      const longIdle = Array.from({ length: n }, (_, i) => `bench-idle-${i}`);
      for (const name of longIdle) {
        await applyObject(
          node.apiUrl,
          'functions',
          functionObject(name, `/${name}`, code.digest, { idleSeconds: 1 }),
        );
      }
      await waitAllReady(node.apiUrl, probes.length + longIdle.length, 120_000);
      for (const name of longIdle) await timedGet(`${node.gatewayUrl}/${name}`);
      await waitForZero(node.apiUrl, longIdle, 60_000);
      ctx.log(`A2. waiting ${PROCESS_IDLE_WAIT_MS / 1000} s for the revisions' sandbox processes to close`);
      await new Promise((r) => setTimeout(r, PROCESS_IDLE_WAIT_MS));
      const coldLong: number[] = [];
      for (const name of longIdle) {
        const first = await timedGet(`${node.gatewayUrl}/${name}`);
        if (first.status !== 200 || first.body !== BODY)
          throw new Error(`${name} answered ${first.status}: ${first.body}`);
        coldLong.push(first.ms);
        // Let the platform prepare its next spare process, as it would between independent cold starts.
        await new Promise((r) => setTimeout(r, SPACING_MS));
      }
      ctx.log(`A2. ${n} cold starts after a long idle: p50 ${summarize(coldLong).p50} ms`);

      // B. apply → first 200 of N new functions.
      const applyToFirst: number[] = [];
      for (let i = 1; i <= n; i++) {
        const name = `bench-cold-new-${i}`;
        const t0 = performance.now();
        await applyObject(node.apiUrl, 'functions', functionObject(name, `/${name}`, code.digest));
        await pollUntil(`${node.gatewayUrl}/${name}`, BODY, 30_000);
        applyToFirst.push(since(t0));
      }
      ctx.log(`B. ${n} new functions, apply → first 200: p50 ${summarize(applyToFirst).p50} ms`);

      const a = summarize(cold);
      const a2 = summarize(coldLong);
      const w = summarize(warm);
      const b = summarize(applyToFirst);
      const p50s = recordedCold.map((r) => r.coldStartP50Ms ?? Number.NaN).filter(Number.isFinite);
      const p99s = recordedCold.map((r) => r.coldStartP99Ms ?? Number.NaN).filter(Number.isFinite);
      return {
        metrics: [
          {
            name: 'A. no instance (process still up): p50',
            value: a.p50,
            unit: 'ms',
            target: { op: '<=', value: 10 },
          },
          {
            name: 'A. no instance (process still up): p99',
            value: a.p99,
            unit: 'ms',
            target: { op: '<=', value: 50 },
          },
          {
            name: 'A. right at scale-to-zero (warm-ups under way): p50',
            value: summarize(atZero).p50,
            unit: 'ms',
          },
          {
            name: 'A. right at scale-to-zero (warm-ups under way): max',
            value: summarize(atZero).max,
            unit: 'ms',
          },
          {
            name: 'A2. no instance, no process (long idle): p50',
            value: a2.p50,
            unit: 'ms',
            target: { op: '<=', value: 10 },
          },
          {
            name: 'A2. no instance, no process (long idle): p99',
            value: a2.p99,
            unit: 'ms',
            target: { op: '<=', value: 50 },
          },
          { name: 'A. the request right after (warm): p50', value: w.p50, unit: 'ms' },
          {
            name: 'A. cold-start wait recorded by Kylix: median of p50s',
            value: summarize(p50s).p50,
            unit: 'ms',
          },
          { name: 'A. cold-start wait recorded by Kylix: max of p99s', value: Math.max(...p99s), unit: 'ms' },
          { name: 'B. apply → first 200, new function: p50', value: b.p50, unit: 'ms' },
          { name: 'B. apply → first 200, new function: p99', value: b.p99, unit: 'ms' },
        ],
        details: {
          coldAtScaleToZeroMs: atZero,
          coldFromZeroMs: cold,
          coldAfterLongIdleMs: coldLong,
          warmAfterMs: warm,
          applyToFirst200Ms: applyToFirst,
          platformStats: recordedCold,
          platformColdStarts,
          summaries: { a, a2, w, b },
        },
        notes: [
          `A: ${probes.length} probe functions with spec.scaling.idleSeconds: 1; the bench waits until the stats API (GET …/functions/<name>/stats) shows 0 instances for all of them, waits ${SETTLE_MS} ms more (each idle revision's process warms one worker in the background after its scale-down; all ${probes.length} do so at the same moment here, on one core), then sends one GET to each in turn from the bench process over a keep-alive connection to the gateway, timing it as a client. ${n} cold starts in all (the platform counted ${platformColdStarts}). "Recorded by Kylix" is the platform's own figure: how long the request waited for its instance (per probe p50/p99 from the stats API). "Right at scale-to-zero" is one extra round sent without that wait, while the ${probes.length} warm-ups compete for the core.`,
          `A2: ${n} more functions (idleSeconds: 1), each called once, then left until their instances were stopped and ${PROCESS_IDLE_WAIT_MS / 1000} s more, past the 10 s a revision's sandbox process outlives its last instance; then one GET each, ${SPACING_MS} ms apart so the platform can prepare its next spare process. This is a function idle for a while: the request takes a sandbox process (the namespace's spare, if ready), whose worker is already started and warmed, and loads the bundle.`,
          `B: ${n} distinct functions (the same small bundle, uploaded once), timed from the apply PATCH to the first 200 on their route, polling the gateway in a tight loop; it includes admission, the revision write and the proof-of-start instance the deploy starts.`,
        ],
      };
    } finally {
      await node.stop();
    }
  },
};
