/**
 * Isolation measurements for the benchmark suite (not timed tests): how fast an infinite loop is
 * stopped, whether a CPU-burning function in one namespace disturbs another's latency, and how far
 * a memory bomb's sandbox process gets past its limit. `scripts/measure-isolation.ts` prints them;
 * bench/ can call measureIsolation() and report the figures beside the targets.
 */
import { apply, startNode, type TestNode, writeProject } from './platform.js';

/** The figures, with the targets from the isolation issue. */
export interface IsolationFigures {
  loopStop: { cpuMs: number; stoppedMs: number; targetMs: number; status: number }[];
  neighbour: {
    quietP99Ms: number;
    loadedP99Ms: number;
    targetP99Ms: number;
    quietRequests: number;
    loadedRequests: number;
    errors: number;
    burnerStatuses: Record<string, number>;
  };
  memoryBomb: { limitMiB: number; status: number; code: string; peakMiB?: number; targetPeakMiB: number };
  layers: string[];
}

const p99 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? 0;
};

/** Sends GETs from `concurrency` loops for `ms`; returns latencies and non-2xx counts. */
async function load(url: string, concurrency: number, ms: number) {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const res = await fetch(url);
          await res.arrayBuffer();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status !== 200) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, statuses, errors };
}

/** Loops forever, except on /…/ok, which warms an instance up first. */
const LOOP =
  "export default { fetch(req) { if (req.url.endsWith('/ok')) return new Response('ok'); for (;;) {} } };";

function manifest(name: string, namespace: string, spec: string): string {
  return `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  source: ./${name}.js\n  routes:\n    - path: /${name}\n    - path: /${name}/*\n${spec}`;
}

/** Runs the three measurements on a fresh node; about 30 s with the defaults. */
export async function measureIsolation(
  options: { seconds?: number; node?: TestNode } = {},
): Promise<IsolationFigures> {
  const seconds = options.seconds ?? 5;
  const node = options.node ?? (await startNode());
  try {
    await apply(
      node,
      writeProject({
        'kylix.yaml': [
          manifest('hello', 'quiet', ''),
          manifest('loop100', 'noisy', '  limits:\n    cpuMs: 100\n'),
          manifest('loop1000', 'noisy', '  limits:\n    cpuMs: 1000\n'),
          manifest('bomb', 'noisy', '  limits:\n    memoryMiB: 128\n'),
        ].join('\n---\n'),
        'hello.js': "export default { fetch() { return new Response('hello'); } };",
        'loop100.js': LOOP,
        'loop1000.js': LOOP,
        'bomb.js':
          'const keep = []; export default { fetch() { for (;;) { const b = new Uint8Array(16 * 1024 * 1024); b.fill(7); keep.push(b); } } };',
      }),
    );
    // 1. Loop stop time, from the request to its 503, on a warm instance.
    const loopStop: IsolationFigures['loopStop'] = [];
    for (const cpuMs of [100, 1000]) {
      for (let i = 0; i < 3; i++) {
        await (await fetch(node.url(`/loop${cpuMs}/ok`))).arrayBuffer();
        const t = performance.now();
        const res = await fetch(node.url(`/loop${cpuMs}`));
        await res.arrayBuffer();
        const stoppedMs = Math.round(performance.now() - t);
        loopStop.push({ cpuMs, stoppedMs, targetMs: Math.max(2 * cpuMs, cpuMs + 50), status: res.status });
      }
    }
    // 2. The neighbour's p99, quiet and then while the noisy namespace loops under load.
    await load(node.url('/hello'), 4, 500);
    const quiet = await load(node.url('/hello'), 4, seconds * 1000);
    const [loaded, burner] = await Promise.all([
      load(node.url('/hello'), 4, seconds * 1000),
      load(node.url('/loop1000'), 4, seconds * 1000),
    ]);
    const quietP99 = p99(quiet.latencies);
    // 3. The memory bomb, stopped by the cgroup (or the in-process budget).
    const res = await fetch(node.url('/bomb'));
    const body = (await res.json()) as { error?: { code: string; message: string } };
    const peak = node.platform.logs
      .tail('noisy', 'bomb', 100)
      .map((e) => /peak (\d+) MiB/.exec(e.message)?.[1])
      .find(Boolean);
    return {
      loopStop,
      neighbour: {
        quietP99Ms: Math.round(quietP99 * 10) / 10,
        loadedP99Ms: Math.round(p99(loaded.latencies) * 10) / 10,
        targetP99Ms: Math.round((1.5 * quietP99 + 20) * 10) / 10,
        quietRequests: quiet.latencies.length,
        loadedRequests: loaded.latencies.length,
        errors: loaded.errors,
        burnerStatuses: burner.statuses,
      },
      memoryBomb: {
        limitMiB: 128,
        status: res.status,
        code: body.error?.code ?? '',
        peakMiB: peak ? Number(peak) : undefined,
        targetPeakMiB: 3 * 128,
      },
      layers: node.platform.isolation.layers.map((l) => `${l.name}: ${l.on ? 'on' : 'OFF'}`),
    };
  } finally {
    if (!options.node) await node.destroy();
  }
}
