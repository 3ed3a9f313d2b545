/**
 * CPU accounting for the instances of a sandbox process, from outside their threads (a stuck thread
 * cannot report on itself). Each tick reads every worker's event-loop busy time
 * (worker.performance.eventLoopUtilization) and the requests it has in flight (a shared Int32Array
 * the instance updates), and splits the busy time equally among those requests. An instance is
 * stopped when one request's share passes cpuMs, or when its thread has been busy without a break
 * and without finishing any request for longer than cpuMs (a synchronous or microtask loop, even one
 * started outside a request). Every cycle counts: busy time while no request is in flight (work a
 * function keeps doing after it answered, timers, waitUntil) is charged to the request that finished
 * last, on top of what it used, so answering early buys no free CPU. Busy time is wall time on a thread that did not yield; on an
 * overloaded host it over-counts a little, which errs on the side of the neighbours.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { USAGE_SLOTS } from './protocol.js';

interface Watched {
  worker: Worker;
  usage: Int32Array;
  cpuMs: number;
  elu?: EventLoopUtilization;
  /** When the last tick read it: busy time can never exceed the wall time between two reads. */
  readAt: number;
  /** CPU ms charged so far, per in-flight request sequence number. */
  charged: Map<number, number>;
  finished: number;
  /** CPU charged to the last finished request, growing with any busy time while nothing is in flight. */
  trailing: number;
  busyStreakMs: number;
  onExceeded(message: string): void;
}

/** The process's own CPU figures, where Node has them (the sandbox runs Node 24). */
const threadCpu = (process as { threadCpuUsage?: () => { user: number; system: number } }).threadCpuUsage;

/** See the file comment. */
export class CpuWatchdog {
  private readonly watched = new Map<string, Watched>();
  private timer?: NodeJS.Timeout;
  /**
   * CPU the process used outside its instances' event loops and its own main thread during the last
   * tick (ms): the thread pool (crypto.subtle, compression), beyond an allowance for V8's helpers.
   */
  private poolExtraMs = 0;
  /** Requests in flight, over all instances, at the last tick. */
  private lastLive = 0;
  private lastProcess?: { total: number; main: number; at: number };

  /** Starts watching an instance; `usage` is its shared Int32Array (see USAGE_SLOTS). */
  watch(
    id: string,
    worker: Worker,
    usage: Int32Array,
    cpuMs: number,
    onExceeded: (message: string) => void,
  ): void {
    this.watched.set(id, {
      worker,
      usage,
      cpuMs,
      charged: new Map(),
      readAt: 0,
      finished: 0,
      trailing: 0,
      busyStreakMs: 0,
      onExceeded,
    });
    this.schedule(true);
  }

  /**
   * Ticks often enough to stop a loop within max(2 x cpuMs, cpuMs + 50 ms): every cpuMs / 4 (5 to
   * 50 ms) while an instance is busy or has requests in flight. While every instance is quiet it
   * ticks every min(250, cpuMs / 2) ms instead, so a loop that starts then is seen at most that
   * much later and still stopped in time (cpuMs 100: 50 + 100 + 25 ms; 1000: 250 + 1000 + 50 ms);
   * and two hundred idle instances do not wake the machine twenty times a second each (density).
   */
  private schedule(busy: boolean): void {
    const all = [...this.watched.values()];
    if (all.length === 0) return;
    const ms = Math.min(
      ...all.map((w) =>
        busy
          ? Math.max(5, Math.min(50, Math.floor(w.cpuMs / 4)))
          : Math.max(5, Math.min(250, Math.floor(w.cpuMs / 2))),
      ),
    );
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.schedule(this.tick()), ms);
    this.timer.unref();
  }

  unwatch(id: string): void {
    this.watched.delete(id);
    if (this.watched.size === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Charges CPU to requests and stops what went over; true when any instance was busy or serving. */
  private tick(): boolean {
    let busy = false;
    let activeTotal = 0;
    let liveTotal = 0;
    const extra = this.poolExtraMs;
    const extraPerRequest = this.lastLive > 0 ? extra / this.lastLive : 0;
    const extraPerInstance = this.lastLive === 0 && this.watched.size > 0 ? extra / this.watched.size : 0;
    for (const [id, w] of this.watched) {
      // A worker that is exiting (out of memory, say) reports meaningless figures: its own events decide.
      if (w.worker.threadId === -1) continue;
      let now: EventLoopUtilization;
      try {
        now = w.worker.performance.eventLoopUtilization();
      } catch {
        continue;
      }
      const readAt = performance.now();
      if (!w.elu) {
        w.elu = now;
        w.readAt = readAt;
        busy = true;
        continue;
      }
      const raw = w.worker.performance.eventLoopUtilization(now, w.elu);
      const d = { idle: raw.idle, active: Math.max(0, Math.min(raw.active, readAt - w.readAt)) };
      w.elu = now;
      w.readAt = readAt;
      const live: number[] = [];
      for (let i = 1; i <= USAGE_SLOTS; i++) {
        const seq = Atomics.load(w.usage, i);
        if (seq !== 0) live.push(seq);
      }
      if (live.length > 0 || d.active > 1) busy = true;
      activeTotal += d.active;
      liveTotal += live.length;
      const share = live.length > 0 ? d.active / live.length + extraPerRequest : 0;
      const next = new Map<number, number>();
      let worst = 0;
      for (const seq of live) {
        const total = (w.charged.get(seq) ?? 0) + share;
        next.set(seq, total);
        worst = Math.max(worst, total);
      }
      const finished = Atomics.load(w.usage, 0);
      // Requests that finished since the last tick hand their charge on to the work after them
      // (requests that came and went between two ticks used what they used: nothing carries over).
      if (finished !== w.finished) {
        w.trailing = 0;
        for (const [seq, total] of w.charged) if (!next.has(seq)) w.trailing = Math.max(w.trailing, total);
      } else if (live.length === 0 && d.active > 0.05 * (d.active + d.idle)) {
        // Nothing in flight and nothing finished: this busy time is work left running after a
        // response. (An idle thread's own housekeeping, under 5 % of a core, is not charged, or an
        // instance kept warm for hours would add up to a limit doing nothing.)
        w.trailing += d.active;
      }
      // Thread-pool work (crypto.subtle, compression) with no request in flight is after-work too.
      if (live.length === 0) w.trailing += extraPerInstance;
      w.charged = next;
      // A thread that never went idle and finished nothing this tick is stuck in one task.
      if (d.idle < 0.5 && finished === w.finished && d.active > 0) w.busyStreakMs += d.active;
      else w.busyStreakMs = 0;
      w.finished = finished;
      if (worst > w.cpuMs || w.busyStreakMs > w.cpuMs || w.trailing > w.cpuMs) {
        this.unwatch(id);
        w.onExceeded(
          worst > w.cpuMs
            ? `a request used more than ${w.cpuMs} ms of CPU time`
            : w.busyStreakMs > w.cpuMs
              ? `the instance ran for more than ${w.cpuMs} ms without yielding`
              : `a request and the work it left running after its response used more than ${w.cpuMs} ms of CPU time`,
        );
      }
    }
    this.measurePool(activeTotal, liveTotal);
    return busy;
  }

  /**
   * Every cycle counts, the thread pool's too: the process's CPU since the last tick, less its main
   * thread's and less what the instances' event loops were busy, is work they handed to the pool.
   * Half a core of it is allowed for V8's own helper threads (GC); the rest is charged, next tick,
   * to the requests then in flight (or, with none, as after-work).
   */
  private measurePool(activeTotal: number, liveTotal: number): void {
    this.lastLive = liveTotal;
    this.poolExtraMs = 0;
    if (!threadCpu) return;
    const u = process.cpuUsage();
    const m = threadCpu.call(process);
    const now = {
      total: (u.user + u.system) / 1000,
      main: (m.user + m.system) / 1000,
      at: performance.now(),
    };
    const last = this.lastProcess;
    this.lastProcess = now;
    if (!last) return;
    const wall = now.at - last.at;
    const outside = now.total - last.total - (now.main - last.main) - activeTotal;
    this.poolExtraMs = Math.max(0, outside - 0.5 * wall);
  }
}
