/**
 * The outputs of a run: a plain-text table (scenario, metric, measured, target, gap) for the
 * terminal, and the JSON result file with everything, machine and settings included.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchConfig } from './config.js';
import type { CorePlan, MachineInfo } from './machine.js';
import { gap, type Metric, type ScenarioResult } from './scenario.js';

/** How one scenario ended. */
export interface ScenarioOutcome {
  id: number;
  name: string;
  title: string;
  status: 'ok' | 'failed' | 'pending';
  /** 1, 5 and 15 minute load averages when it started: other work on the machine skews figures. */
  loadAvgAtStart?: number[];
  elapsedS?: number;
  result?: ScenarioResult;
  error?: string;
}

/** Everything the JSON result file holds. */
export interface RunReport {
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  cores: CorePlan;
  /** What `kylix doctor` said about the sandbox layers in force. */
  isolation: string[];
  config: BenchConfig;
  loadAvgAtEnd: number[];
  scenarios: ScenarioOutcome[];
}

function formatValue(m: Metric): string {
  const v = Number.isInteger(m.value) ? String(m.value) : m.value.toFixed(2);
  return m.unit === '×' ? `${v}×` : `${v} ${m.unit}`;
}

/** The table and notes, as lines of text. */
export function renderTable(outcomes: ScenarioOutcome[]): string {
  const rows: string[][] = [['#', 'scenario', 'metric', 'measured', 'target', 'gap']];
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.status !== 'ok') {
      rows.push([
        String(o.id),
        o.name,
        o.status === 'pending' ? '(pending)' : '(FAILED)',
        '',
        '',
        (o.error ?? '').split('\n')[0]!.slice(0, 90),
      ]);
      continue;
    }
    for (const m of o.result!.metrics) {
      const target = m.target ? `${m.target.op} ${m.target.value}${m.unit === '×' ? '×' : ` ${m.unit}`}` : '';
      rows.push([
        String(o.id),
        o.name,
        m.name,
        formatValue(m),
        target,
        m.target ? gap(m.value, m.target) : '',
      ]);
    }
    for (const n of o.result!.notes) notes.push(`[${o.name}] ${n}`);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  if (notes.length) out.push('', 'Notes:', ...notes.map((n) => `  ${n}`));
  return out.join('\n');
}

/** Writes the JSON result file; returns its path. */
export function writeReport(report: RunReport, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const names = report.scenarios.filter((s) => s.status !== 'pending').map((s) => s.name);
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const path = join(outDir, `${stamp}-${names.length > 3 ? 'all' : names.join('+') || 'none'}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
