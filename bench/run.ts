/**
 * `npm run bench [-- scenario… --flags]`: runs the benchmark scenarios (all by default), prints a
 * table of the figures against the targets, and writes a JSON result file under
 * bench/results/. See BENCHMARKS.md for the latest figures and how they were taken.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInvocation, USAGE } from './lib/config.js';
import { kylixDoctor } from './lib/kylix.js';
import { describeMachine, planCores } from './lib/machine.js';
import { killAll, pinSelf, removeOnExit } from './lib/processes.js';
import { type RunReport, renderTable, type ScenarioOutcome, writeReport } from './lib/report.js';
import { SCENARIOS } from './scenarios/index.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** 1. parse flags, 2. pick scenarios, 3. pin, 4. run each, 5. print and write the results. */
async function main(): Promise<number> {
  const invocation = parseInvocation(process.argv.slice(2));
  if (invocation.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { config } = invocation;
  const picked =
    invocation.scenarios.length === 0
      ? SCENARIOS
      : invocation.scenarios.map((name) => {
          const s = SCENARIOS.find((x) => x.name === name || String(x.id) === name);
          if (!s)
            throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
          return s;
        });

  const machine = describeMachine();
  const cores = planCores(config.pin);
  if (cores.client !== undefined && !pinSelf(cores.client)) log('warning: could not pin the harness itself');
  log(
    `machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${cores.description}`,
  );
  const isolation = await kylixDoctor().catch((err: Error) => [`kylix doctor failed: ${err.message}`]);
  log(`sandbox layers (kylix doctor):\n  ${isolation.join('\n  ')}`);

  const startedAt = new Date().toISOString();
  const outcomes: ScenarioOutcome[] = [];
  for (const s of picked) {
    const base = {
      id: s.id,
      name: s.name,
      title: s.title,
      loadAvgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    };
    if (!s.run) {
      outcomes.push({ ...base, status: 'pending', error: s.pending });
      continue;
    }
    log(`\n== ${s.id}. ${s.title}`);
    const tmpDir = mkdtempSync(join(tmpdir(), `kylix-bench-${s.name}-`));
    const removeTmpDir = removeOnExit(tmpDir);
    const t0 = performance.now();
    try {
      const result = await s.run({ config, cores, tmpDir, log: (l) => log(`  ${l}`) });
      outcomes.push({
        ...base,
        status: 'ok',
        result,
        elapsedS: Math.round((performance.now() - t0) / 100) / 10,
      });
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`  FAILED: ${message}`);
      outcomes.push({
        ...base,
        status: 'failed',
        error: message,
        elapsedS: Math.round((performance.now() - t0) / 100) / 10,
      });
    } finally {
      removeTmpDir();
    }
  }

  const report: RunReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    cores,
    isolation,
    config,
    loadAvgAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    scenarios: outcomes,
  };
  process.stdout.write(`\n${renderTable(outcomes)}\n`);
  const path = writeReport(report, config.outDir);
  process.stdout.write(`\nResults: ${path}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => {
    killAll();
    process.exit(code);
  },
  (err) => {
    log(`bench: ${err instanceof Error ? err.message : String(err)}`);
    killAll();
    process.exit(2);
  },
);
