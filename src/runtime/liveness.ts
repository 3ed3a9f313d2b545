/**
 * Whether a sandbox process still answers. A process that is stopped (SIGSTOP, a frozen cgroup, a
 * debugger) or hung uses no CPU, so no CPU limit ends it, and its exit never comes: without this,
 * every request routed to it waited for its full wall-time limit, and new ones kept being routed
 * there. While the process holds instances, the supervisor pings it on its control channel (the
 * process's main thread answers; tenant code runs on other threads) and ends it when a ping goes
 * unanswered for LIVENESS_MS, as a Kubernetes liveness probe would. Any other message the process
 * sends meanwhile also proves its main thread runs: an answer queued behind a burst of its logs
 * (the supervisor reads a process's control messages within a budget) is not a hang.
 *
 * The supervisor's own loop can be held too (a long GC, a synchronous burst): a tick that comes
 * late says nothing about the process, whose answer may be waiting unread, so it gives the process
 * a full deadline again instead of judging it.
 */
import { type CancelTimer, type Clock, systemClock } from '../control-plane/clock.js';

/**
 * How long a ping may go unanswered before the process is ended (KYLIX_SANDBOX_LIVENESS_MS, 1 s to
 * 10 min; 10 s when unset or out of range).
 */
export const LIVENESS_MS = inRange(Number(process.env.KYLIX_SANDBOX_LIVENESS_MS), 1000, 600_000, 10_000);

function inRange(value: number, min: number, max: number, otherwise: number): number {
  return Number.isFinite(value) && value >= min && value <= max ? value : otherwise;
}

/** See the file comment. */
export class Liveness {
  /** The last ping sent, and the last one answered (pings are numbered from 1; one in flight at a time). */
  private sent = 0;
  private answered = 0;
  private sentAt = 0;
  private lastTick: number;
  private cancel?: CancelTimer;
  private stopped = false;

  constructor(
    private readonly ping: (seq: number) => void,
    /** True while the process holds instances: an idle process is not pinged. */
    private readonly busy: () => boolean,
    /** Called once, with the reason, when the process did not answer in time. */
    private readonly dead: (reason: string) => void,
    private readonly deadlineMs = LIVENESS_MS,
    private readonly clock: Clock = systemClock,
  ) {
    this.lastTick = clock.now();
    this.schedule();
  }

  /** A pong from the process; false when it answers no ping outstanding (a broken or lying process). */
  answer(seq: unknown): boolean {
    if (seq !== this.sent || this.sent === this.answered) return false;
    this.answered = this.sent;
    return true;
  }

  /**
   * Anything else the process sent: its main thread is running (what a stopped process wrote waits
   * in its own queue, not in the socket), so an answer queued behind its logs gets a new deadline.
   */
  heard(): void {
    if (this.sent > this.answered) this.sentAt = this.clock.now();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  /** The next tick, a quarter of the deadline from now. */
  private schedule(): void {
    this.cancel = this.clock.after(this.deadlineMs / 4, () => {
      this.tick();
      if (!this.stopped) this.schedule();
    });
  }

  private tick(): void {
    const now = this.clock.now();
    const late = now - this.lastTick > this.deadlineMs / 2;
    this.lastTick = now;
    if (this.sent > this.answered) {
      if (late) this.sentAt = now;
      else if (now - this.sentAt > this.deadlineMs) {
        this.stop();
        this.dead(`no answer to a liveness check within ${this.deadlineMs} ms (stopped or hung)`);
      }
      return;
    }
    if (!this.busy()) return;
    this.sent++;
    this.sentAt = now;
    this.ping(this.sent);
  }
}
