/**
 * The sandbox process: started by the supervisor (one per function revision, never shared between
 * namespaces, under bubblewrap and a cgroup where the host allows), it runs each function instance in
 * a worker thread with heap and stack caps, enforces the start-up, CPU and (without a cgroup) memory
 * limits from outside the worker, and reports readiness, limit breaches and exits on its control
 * channel (control.ts). Each instance talks to the supervisor on its own channel (an fd the
 * supervisor gave this process); this thread never sees its requests.
 * Tenant code never runs in the supervisor; it runs here.
 */
import { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { CONTROL_FD, ControlChannel, fitControlText } from './control.js';
import type { FromInstance, FromSandbox, LimitCode, LogRecord, ToSandbox, WorkerSpec } from './protocol.js';
import { STARTUP_WALL_FACTOR, USAGE_SLOTS } from './protocol.js';
import { CpuWatchdog } from './watchdog.js';

const workers = new Map<string, Worker>();
const watchdog = new CpuWatchdog();
let memoryBudget = 0;
let budgetTimer: NodeJS.Timeout | undefined;

/** The supervisor's control channel (control.ts); defined below, once the handlers are. */
let control: ControlChannel<ToSandbox, FromSandbox> | undefined;

/** Sends a control message; texts longer than the supervisor takes are cut here. */
function send(message: FromSandbox): void {
  if ('message' in message && typeof message.message === 'string')
    message = { ...message, message: fitControlText(message.message) } as FromSandbox;
  control?.send(message);
}

/** Log records one instance may send per second; more are dropped and counted, so a log flood cannot swamp the supervisor. */
const LOGS_PER_SECOND = 1000;
/** The longest log message kept, in characters. */
const MAX_LOG_CHARS = 16 * 1024;

/** Relays an instance's log records within the rate above; flush() reports what was dropped. */
function logRelay(id: string): { log(record: LogRecord): void; flush(): void } {
  let windowStart = 0;
  let count = 0;
  let dropped = 0;
  const flush = () => {
    if (dropped > 0)
      send({
        type: 'log',
        id,
        record: {
          level: 'warn',
          message: `${dropped} log lines dropped: an instance may write ${LOGS_PER_SECOND} a second.`,
          time: new Date().toISOString(),
        },
      });
    dropped = 0;
  };
  const log = (record: LogRecord) => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      flush();
      windowStart = now;
      count = 0;
      dropped = 0;
    }
    if (++count > LOGS_PER_SECOND) {
      dropped++;
      return;
    }
    if (record.message.length > MAX_LOG_CHARS)
      record.message = `${record.message.slice(0, MAX_LOG_CHARS)}… (${record.message.length - MAX_LOG_CHARS} more characters)`;
    send({ type: 'log', id, record });
  };
  return { log, flush };
}

/** Stops an instance for a limit; the supervisor hears why before the sockets close. */
function stopFor(id: string, code: LimitCode, message: string): void {
  const worker = workers.get(id);
  if (!worker) return;
  send({ type: 'limit', id, code, message });
  void worker.terminate();
}

/** A worker started ahead of need, not yet given a module. */
interface WarmWorker {
  worker: Worker;
  usage: Int32Array;
  memoryMiB: number;
  egressSocket: string;
}

const warm: WarmWorker[] = [];
let warmTarget: { count: number; egressSocket: string; memoryMiB: number } | undefined;

/**
 * The instance's young generation (MiB): an eighth of its heap cap, 8–16 MiB (within the
 * per-instance allowance the supervisor adds to the heap cap for the cgroup). Left to V8, it is
 * sized from the memory the process can see — inside bubblewrap, the whole machine's, since the
 * cgroup's limit is out of sight — and grows to 128 MiB. V8 then starts a major GC whenever the old
 * generation could not take a full young generation's survivors, which under a 128 MiB cap is
 * always: measured, hello world fell from 16k to 6k req/s after ten seconds of load, most of the
 * sandbox's CPU in concurrent marking. Set here, it is the same on every machine.
 */
export function youngGenerationMiB(memoryMiB: number): number {
  return Math.min(16, Math.max(8, Math.floor(memoryMiB / 8)));
}

function newWorker(workerData: Record<string, unknown>, memoryMiB: number): Worker {
  return new Worker(new URL('./instance.js', import.meta.url), {
    workerData,
    resourceLimits: {
      maxOldGenerationSizeMb: memoryMiB,
      maxYoungGenerationSizeMb: youngGenerationMiB(memoryMiB),
      stackSizeMb: 4,
    },
    env: {},
    execArgv: [],
    stdout: false,
    stderr: false,
  });
}

/** Starts warm workers up to the target; one that dies unassigned just leaves the pool. */
function fillWarm(): void {
  if (!warmTarget) return;
  while (warm.length < warmTarget.count) {
    const usage = new Int32Array(new SharedArrayBuffer(4 * (USAGE_SLOTS + 1)));
    const { egressSocket, memoryMiB } = warmTarget;
    const entry: WarmWorker = {
      worker: newWorker({ usage, prestart: { egressSocket } }, memoryMiB),
      usage,
      memoryMiB,
      egressSocket,
    };
    entry.worker.once('exit', () => {
      const i = warm.indexOf(entry);
      if (i >= 0) warm.splice(i, 1);
    });
    warm.push(entry);
  }
}

/** Stops the warm workers `unwanted` picks. */
function dropWarm(unwanted: (w: WarmWorker) => boolean): void {
  for (const w of warm.filter(unwanted)) {
    warm.splice(warm.indexOf(w), 1);
    void w.worker.terminate();
  }
}

/** A warm worker that fits the instance (same heap cap and egress socket), or a new one. */
function workerFor(spec: WorkerSpec): { worker: Worker; usage: Int32Array } {
  const i = warm.findIndex((w) => w.memoryMiB === spec.memoryMiB && w.egressSocket === spec.egressSocket);
  if (i >= 0) {
    const [w] = warm.splice(i, 1);
    w!.worker.postMessage({ type: 'assign', spec });
    // Only a process still waiting for its revision keeps warm workers: once it serves one, an idle
    // worker per revision would double the memory of every deployed function (density).
    warmTarget = undefined;
    return w!;
  }
  // None fits (another heap cap): those waiting would never be used by this revision's process.
  dropWarm(() => true);
  warmTarget = undefined;
  const usage = new Int32Array(new SharedArrayBuffer(4 * (USAGE_SLOTS + 1)));
  return { worker: newWorker({ spec, usage }, spec.memoryMiB), usage };
}

/** 1. start (or take a warm) worker, 2. bound its start-up, 3. relay its first ready/failed message and logs, 4. watch its CPU, 5. report its exit. */
function start(spec: WorkerSpec): void {
  const { worker, usage } = workerFor(spec);
  workers.set(spec.id, worker);
  const logs = logRelay(spec.id);
  let settled = false;
  let exitReported = false;
  const fail = (message: string) => {
    if (settled) return;
    settled = true;
    clearTimeout(startupTimer);
    send({ type: 'failed', id: spec.id, message });
    void worker.terminate();
  };
  // The instance measures the CPU its module's evaluation used against startupLimitMs. This clock is
  // the backstop for a module that never finishes loading (a loop, an await that never settles),
  // in wall time, generous enough that a busy host (many deploys at once) does not trip it.
  let startupTimer: NodeJS.Timeout | undefined;
  const startClock = () => {
    const wallMs = spec.startupLimitMs * STARTUP_WALL_FACTOR;
    startupTimer = setTimeout(
      () =>
        fail(
          `loading the module did not finish within ${wallMs / 1000} s (the CPU limit for it is ${spec.startupLimitMs} ms). Move slow start-up work out of the module's global scope (into fetch(), lazily), and do not await anything that may never settle there.`,
        ),
      wallMs,
    );
  };
  worker.on('message', (m: FromInstance) => {
    // Log records come this way, not on the instance's channel: a thread stuck in a loop still
    // gets them out (postMessage is synchronous), and a flood is counted here and again by the supervisor.
    if (m.type === 'log') logs.log(m.record);
    else if (m.type === 'loading') startClock();
    else if (m.type === 'ready') {
      if (settled) return;
      settled = true;
      clearTimeout(startupTimer);
      watchdog.watch(spec.id, worker, usage, spec.cpuMs, (why) =>
        stopFor(spec.id, 'ERR_CPU_LIMIT', `${why} (spec.limits.cpuMs is ${spec.cpuMs})`),
      );
      send({ type: 'ready', id: spec.id, startupMs: m.startupMs });
    } else if (m.type === 'failed') fail(m.message);
  });
  worker.on('error', (err: Error & { code?: string }) => {
    const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
    const message = oom
      ? `the instance used more than its ${spec.memoryMiB} MiB heap (spec.limits.memoryMiB)`
      : err.message;
    if (!settled) return fail(oom ? `while loading, ${message}` : message);
    if (oom) send({ type: 'limit', id: spec.id, code: 'ERR_MEMORY_LIMIT', message });
    send({ type: 'exited', id: spec.id, code: 1, message });
    exitReported = true;
  });
  worker.on('exit', (code) => {
    logs.flush();
    clearTimeout(startupTimer);
    watchdog.unwatch(spec.id);
    workers.delete(spec.id);
    if (exitReported) return;
    if (settled) send({ type: 'exited', id: spec.id, code });
    else
      fail(
        code === 13
          ? "the module's top-level await never settled"
          : `the instance exited while loading the module (code ${code})`,
      );
  });
}

/** Without a cgroup, the process's resident memory is checked instead: coarser, but it catches ArrayBuffer and Wasm bombs too. */
function checkBudget(): void {
  if (memoryBudget <= 0 || process.memoryUsage.rss() <= memoryBudget) return;
  for (const id of [...workers.keys()])
    stopFor(
      id,
      'ERR_MEMORY_LIMIT',
      `the sandbox process used more than ${Math.round(memoryBudget / 2 ** 20)} MiB`,
    );
}

function onControl(m: ToSandbox): void {
  if (m.type === 'start') start(m.instance);
  else if (m.type === 'ping') send({ type: 'pong', seq: m.seq });
  else if (m.type === 'warm') {
    warmTarget = m;
    // Workers warmed for another heap cap or socket would never be taken: replace them.
    dropWarm((w) => w.memoryMiB !== m.memoryMiB || w.egressSocket !== m.egressSocket);
    fillWarm();
  } else if (m.type === 'budget') {
    memoryBudget = m.memoryBytes;
    clearInterval(budgetTimer);
    budgetTimer = setInterval(checkBudget, 20);
    budgetTimer.unref();
  } else if (m.type === 'stop') {
    const w = workers.get(m.id);
    if (w) void w.terminate();
    else send({ type: 'exited', id: m.id, code: 0 });
  }
}

control = new ControlChannel<ToSandbox, FromSandbox>(
  new Socket({ fd: CONTROL_FD, readable: true, writable: true }),
  onControl,
  () => process.exit(1),
);
// The supervisor is gone: nothing here may outlive it.
control.onClose(() => process.exit(0));
send({ type: 'hello', pid: process.pid, nodeVersion: process.version });
