/**
 * Benchmark settings: defaults for the full run, overridable by flags (`npm run bench -- --duration 3`)
 * or environment variables (BENCH_DURATION=3), and a `--quick` preset for a fast sanity run.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Everything a scenario may be told. */
export interface BenchConfig {
  /** Seconds of measured load per round (throughput scenarios). */
  durationS: number;
  /** Seconds of unmeasured load before each measured round. */
  warmupS: number;
  /** Measured rounds per target; targets alternate round by round. */
  rounds: number;
  /** Concurrent connections of the load generator. */
  connections: number;
  /** Cold starts measured (each of the two methods). */
  coldStarts: number;
  /** Deploys measured by the deploy-to-live scenario. */
  deploys: number;
  /** Functions deployed by the density scenario. */
  densityFunctions: number;
  /** Warm instances the per-instance memory is measured on. */
  densityWarm: number;
  /** Resources applied by the control-plane scenario. */
  resources: number;
  /** List requests timed by the control-plane scenario. */
  listRequests: number;
  /** Binding calls per figure in the bindings scenario. */
  bindingOps: number;
  /** Restricts throughput scenarios to these targets (kylix, raw, workerd); all when empty. */
  targets: string[];
  /** Pin servers and load generator to separate cores with taskset. */
  pin: boolean;
  /** Where the JSON result file goes. */
  outDir: string;
}

/** What the command line asked for: scenarios to run and the settings. */
export interface Invocation {
  scenarios: string[];
  config: BenchConfig;
  help: boolean;
}

const DEFAULTS: BenchConfig = {
  durationS: 10,
  warmupS: 3,
  rounds: 2,
  connections: 64,
  coldStarts: 50,
  deploys: 20,
  densityFunctions: 1000,
  densityWarm: 200,
  resources: 1000,
  listRequests: 200,
  bindingOps: 5000,
  targets: [],
  pin: true,
  outDir: resolve('bench/results'),
};

/** `--quick`: enough to see every scenario work, in about a minute. */
const QUICK: Partial<BenchConfig> = {
  durationS: 2,
  warmupS: 1,
  rounds: 1,
  coldStarts: 10,
  deploys: 5,
  densityFunctions: 50,
  densityWarm: 20,
  resources: 100,
  listRequests: 50,
  bindingOps: 500,
};

/** Flag name, environment variable and config key of each numeric setting. */
const NUMERIC: [flag: string, env: string, key: keyof BenchConfig][] = [
  ['duration', 'BENCH_DURATION', 'durationS'],
  ['warmup', 'BENCH_WARMUP', 'warmupS'],
  ['rounds', 'BENCH_ROUNDS', 'rounds'],
  ['connections', 'BENCH_CONNECTIONS', 'connections'],
  ['cold-starts', 'BENCH_COLD_STARTS', 'coldStarts'],
  ['deploys', 'BENCH_DEPLOYS', 'deploys'],
  ['functions', 'BENCH_FUNCTIONS', 'densityFunctions'],
  ['warm', 'BENCH_WARM', 'densityWarm'],
  ['resources', 'BENCH_RESOURCES', 'resources'],
  ['list-requests', 'BENCH_LIST_REQUESTS', 'listRequests'],
  ['binding-ops', 'BENCH_BINDING_OPS', 'bindingOps'],
];

/** The usage text of `npm run bench -- --help`. */
export const USAGE = `Usage: npm run bench -- [scenario…] [flags]

Scenarios (default: all): hello, hono, cold-start, deploy, density, bindings, isolation, control-plane, overload,
observability

Flags (each also an environment variable):
${NUMERIC.map(([flag, env, key]) => `  --${flag.padEnd(14)} ${env.padEnd(20)} default ${DEFAULTS[key]}`).join('\n')}
  --targets LIST     BENCH_TARGETS        kylix,raw,workerd (default all)
  --no-pin           BENCH_PIN=0          do not pin servers and load generator to separate cores
  --out DIR          BENCH_OUT            where the JSON result goes (default bench/results)
  --quick            BENCH_QUICK=1        short settings for a sanity run (~1-2 minutes)
`;

function positiveNumber(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name} must be a non-negative number, not "${value}"`);
  return n;
}

/** Parses argv and the environment into an Invocation. */
export function parseInvocation(argv: string[], env: NodeJS.ProcessEnv = process.env): Invocation {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    targets: { type: 'string' },
    'no-pin': { type: 'boolean' },
    out: { type: 'string' },
    quick: { type: 'boolean' },
    help: { type: 'boolean' },
  };
  for (const [flag] of NUMERIC) options[flag] = { type: 'string' };
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });

  const quick = values.quick === true || env.BENCH_QUICK === '1';
  const config: BenchConfig = { ...DEFAULTS, ...(quick ? QUICK : {}) };
  const numbers = config as unknown as Record<string, number>;
  for (const [flag, envName, key] of NUMERIC) {
    const raw = (values[flag] as string | undefined) ?? env[envName];
    if (raw !== undefined) numbers[key] = positiveNumber(flag, raw);
  }
  const targets = (values.targets as string | undefined) ?? env.BENCH_TARGETS;
  if (targets)
    config.targets = targets
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  if (values['no-pin'] === true || env.BENCH_PIN === '0') config.pin = false;
  const out = (values.out as string | undefined) ?? env.BENCH_OUT;
  if (out) config.outDir = resolve(out);
  return { scenarios: positionals, config, help: values.help === true };
}
