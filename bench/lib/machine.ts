/**
 * What machine the figures came from: cores, memory, CPU model, Node version, kernel, and whether
 * taskset can pin processes; plus the load average, to spot a busy machine.
 */
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { HAS_TASKSET } from './processes.js';

/** The machine description stored with every result. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
  taskset: boolean;
  loadAvgAtStart: number[];
}

/** Describes this machine. */
export function describeMachine(): MachineInfo {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    kernel: release(),
    taskset: HAS_TASKSET,
    loadAvgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** How servers and load generator share the cores in this run. */
export interface CorePlan {
  /** Cores for the server under test (and its child processes), or undefined when not pinned. */
  server?: string;
  /** Cores for the load generator, CLI clients and the harness itself. */
  client?: string;
  /** One sentence for the report. */
  description: string;
}

/** Splits the cores between server and client: half each when pinning is possible and asked for. */
export function planCores(pin: boolean): CorePlan {
  const n = availableParallelism();
  if (!pin) return { description: `not pinned: servers and load generator share all ${n} cores` };
  if (!HAS_TASKSET)
    return {
      description: `not pinned (taskset is not installed): servers and load generator share all ${n} cores`,
    };
  if (n < 2) return { description: 'not pinned: only one core' };
  const half = Math.floor(n / 2);
  const range = (from: number, to: number) => (from === to ? `${from}` : `${from}-${to}`);
  const server = range(0, half - 1);
  const client = range(half, n - 1);
  return {
    server,
    client,
    description: `pinned with taskset: server under test (with all its child processes) on core ${server}, load generator, CLI and harness on core ${client}`,
  };
}
