/**
 * What a scenario is and what it returns: metrics with optional targets (so the report can show the
 * gap), free-form details for the JSON file, and notes that say what exactly was measured.
 */
import type { BenchConfig } from './config.js';
import type { CorePlan } from './machine.js';

/** A target from the issue: the measured value must be at least (`>=`) or at most (`<=`) `value`. */
export interface Target {
  op: '>=' | '<=';
  value: number;
}

/** One figure of a scenario. */
export interface Metric {
  name: string;
  value: number;
  unit: string;
  target?: Target;
}

/** What a scenario returns. */
export interface ScenarioResult {
  metrics: Metric[];
  /** Raw data for the JSON file (per round, per sample…). */
  details: Record<string, unknown>;
  /** Sentences on what was measured and anything that did not work. */
  notes: string[];
}

/** What a scenario is given. */
export interface ScenarioContext {
  config: BenchConfig;
  cores: CorePlan;
  /** A fresh folder for this scenario, deleted after the run. */
  tmpDir: string;
  /** Progress lines (stderr), so stdout stays the table. */
  log(line: string): void;
}

/** One benchmark scenario, numbered as in the issue. */
export interface Scenario {
  readonly id: number;
  readonly name: string;
  readonly title: string;
  /** Absent for scenarios that are planned but not written yet; `pending` says why. */
  run?(ctx: ScenarioContext): Promise<ScenarioResult>;
  readonly pending?: string;
}

/** Whether `value` meets `target`. */
export function meets(value: number, target: Target): boolean {
  return target.op === '>=' ? value >= target.value : value <= target.value;
}

/** The gap to a target in words: "meets (1.8× better)" or "misses: 2.3× the limit". */
export function gap(value: number, target: Target): string {
  if (!Number.isFinite(value)) return 'not measured';
  const ratio =
    target.op === '>='
      ? value / target.value
      : target.value === 0
        ? Number.POSITIVE_INFINITY
        : value / target.value;
  const r = ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2);
  if (meets(value, target))
    return target.op === '>=' ? `meets (${r}× the target)` : `meets (${r}× the limit)`;
  return target.op === '>=' ? `MISSES: ${r}× the target` : `MISSES: ${r}× the limit`;
}
