/**
 * Scenario 7, isolation: how fast an infinite loop is stopped against its CPU limit, a neighbour
 * function's p99 while another namespace's function burns CPU under load, and a memory bomb's peak.
 * The measurement is test/helpers/measure-isolation.ts, run as its own process (scripts/measure-isolation.ts).
 */
import { join } from 'node:path';
import type { IsolationFigures } from '../../test/helpers/measure-isolation.js';
import { ROOT } from '../lib/kylix.js';
import { runProcess } from '../lib/processes.js';
import type { Metric, Scenario } from '../lib/scenario.js';

/** See the file comment. */
export const isolation: Scenario = {
  id: 7,
  name: 'isolation',
  title: 'Isolation: loop stop time, noisy neighbour, memory bomb',
  async run(ctx) {
    const seconds = Math.max(2, Math.round(ctx.config.durationS / 2));
    const { code, stdout, stderr } = await runProcess(
      'measure-isolation',
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts/measure-isolation.ts'), String(seconds)],
      {
        cwd: ROOT,
        cpus: ctx.cores.server,
        timeoutMs: 300_000,
      },
    );
    if (code !== 0) throw new Error(`measure-isolation failed (exit ${code}): ${stderr.slice(-2000)}`);
    const f = JSON.parse(stdout.slice(stdout.indexOf('{'))) as IsolationFigures;
    const metrics: Metric[] = [
      ...f.loopStop.map((l) => ({
        name: `infinite loop stopped (cpuMs ${l.cpuMs})`,
        value: Math.round(l.stoppedMs),
        unit: 'ms',
        target: { op: '<=' as const, value: l.targetMs },
      })),
      { name: 'neighbour p99, quiet', value: Math.round(f.neighbour.quietP99Ms * 10) / 10, unit: 'ms' },
      {
        name: 'neighbour p99, while another namespace burns CPU',
        value: Math.round(f.neighbour.loadedP99Ms * 10) / 10,
        unit: 'ms',
        target: { op: '<=', value: Math.round(f.neighbour.targetP99Ms * 10) / 10 },
      },
      {
        name: 'neighbour errors under the noise',
        value: f.neighbour.errors,
        unit: '',
        target: { op: '<=', value: 0 },
      },
      ...(f.memoryBomb.peakMiB !== undefined
        ? [
            {
              name: `memory bomb peak (limit ${f.memoryBomb.limitMiB} MiB)`,
              value: f.memoryBomb.peakMiB,
              unit: 'MiB',
              target: { op: '<=' as const, value: f.memoryBomb.targetPeakMiB },
            },
          ]
        : []),
    ];
    return {
      metrics,
      details: f as unknown as Record<string, unknown>,
      notes: [
        `Platform and its load client run in one process pinned to core ${ctx.cores.server}, with the sandboxes: the noise is worse than with a separate client, not better.`,
        `Memory bomb: answered ${f.memoryBomb.status} ${f.memoryBomb.code}${f.memoryBomb.peakMiB === undefined ? '; no cgroup here, so no peak figure' : ''}.`,
        `Layers: ${f.layers.join('; ')}`,
      ],
    };
  },
};
