/**
 * Cron triggers: each Function with spec.triggers.schedule fires scheduled(event) once per tick per
 * cluster, however many nodes run. Every node computes the same ticks; before firing, a node claims
 * the tick with a compare-and-set on a ScheduleState object in the shared state store, so exactly
 * one node wins. After downtime, at most one catch-up run happens and the rest are logged as missed.
 * Where the store offers leader election (Kubernetes Leases), only the leader claims and fires;
 * the claim still makes a tick run once when the leadership changes hands in the middle of it.
 */
import { Cron } from 'croner';
import { scopedKey } from '../bindings/identity.js';
import type { LeaderElection, Store } from '../control-plane/store/interface.js';
import { KylixError } from '../errors.js';
import { API_VERSION, type KObject } from '../resources/meta.js';

/** A function's schedule. */
export interface ScheduleTarget {
  namespace: string;
  functionName: string;
  cron: string;
  timezone: string;
}

/** What scheduled(event) receives, as on Workers. */
export interface ScheduledEvent {
  cron: string;
  /** The tick this run is for, ms since the epoch. */
  scheduledTime: number;
  /** True for the one run made up after downtime. */
  catchUp: boolean;
}

/** Runs the function's scheduled handler. */
export type FireFn = (target: ScheduleTarget, event: ScheduledEvent) => Promise<void>;
/** Writes a note to the function's log. */
export type NoteFn = (target: ScheduleTarget, level: 'info' | 'warn' | 'error', message: string) => void;

/** A tick run later than this after its time counts as missed ("late"), though it ran. */
export const CRON_LATE_MS = 5000;

/** Told of ticks that were missed: skipped (never run) or run late (beyond CRON_LATE_MS). */
export type MissedFn = (target: ScheduleTarget, reason: 'skipped' | 'late', count: number) => void;

/** The internal kind that records each schedule's last claimed tick. */
export const SCHEDULE_STATE = 'ScheduleState';

interface Entry {
  target: ScheduleTarget;
  cron: Cron;
  timer?: NodeJS.Timeout;
  /** When the timer was set: with no claimed tick on record yet, the ticks after it are due. */
  armedAt?: number;
  /** True while claims fail (noted once, not at every retry). */
  failing?: boolean;
}

/** How soon a tick whose claim failed (the state store did not answer) is tried again. */
const CLAIM_RETRY_MS = 5000;

/** See the file comment. */
export class Scheduler {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly store: Store,
    private readonly fire: FireFn,
    private readonly note: NoteFn,
    private readonly now: () => number = Date.now,
    private readonly missed: MissedFn = () => {},
    private readonly leader?: Pick<LeaderElection, 'isLeader'>,
  ) {}

  /** Whether this node may claim ticks: always, unless an election says another node leads. */
  private leading(): boolean {
    return this.leader?.isLeader() ?? true;
  }

  /** Starts (or replaces) a function's schedule, making up for downtime first. */
  async set(target: ScheduleTarget): Promise<void> {
    const key = scopedKey(target.namespace, target.functionName);
    const existing = this.entries.get(key);
    if (existing && existing.target.cron === target.cron && existing.target.timezone === target.timezone)
      return;
    this.remove(target.namespace, target.functionName);
    const entry: Entry = { target, cron: new Cron(target.cron, { timezone: target.timezone, paused: true }) };
    this.entries.set(key, entry);
    try {
      await this.catchUp(entry);
    } finally {
      // Armed even when the catch-up failed (the state store did not answer): the next tick makes up for it.
      if (this.entries.get(key) === entry) this.arm(entry);
    }
  }

  /** Stops a function's schedule. */
  remove(namespace: string, functionName: string): void {
    const key = scopedKey(namespace, functionName);
    const e = this.entries.get(key);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(key);
  }

  /** Stops every schedule. */
  close(): void {
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
  }

  /** Claims and fires every tick that is due now (the timer calls this; tests call it with a fake clock). */
  async runDue(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.runEntry(e)));
  }

  private async runEntry(entry: Entry): Promise<void> {
    if (!this.leading()) return;
    const state = await this.state(entry.target);
    const last = state
      ? Number((state.spec as { lastTick: number }).lastTick)
      : (entry.armedAt ?? this.now() - 1);
    const due = this.ticksBetween(entry, last, this.now());
    const tick = due.at(-1);
    if (tick !== undefined && (await this.claim(entry.target, tick, state))) {
      // Only the node that won the claim counts: the fleet counts each tick once.
      this.countMissed(entry.target, due.length - 1, tick);
      await this.run(entry.target, { cron: entry.target.cron, scheduledTime: tick, catchUp: false });
    }
  }

  /** 1. find ticks missed since the last claimed one, 2. run the newest once, 3. log the rest. */
  private async catchUp(entry: Entry): Promise<void> {
    if (!this.leading()) return;
    const state = await this.state(entry.target);
    if (!state) {
      // First start of this schedule: nothing was missed; start counting from now.
      await this.claim(entry.target, this.now(), undefined);
      return;
    }
    const missed = this.ticksBetween(
      entry,
      Number((state.spec as { lastTick: number }).lastTick),
      this.now(),
    );
    const newest = missed.at(-1);
    if (newest === undefined) return;
    if (!(await this.claim(entry.target, newest, state))) return;
    this.countMissed(entry.target, missed.length - 1, newest);
    if (missed.length > 1)
      this.note(
        entry.target,
        'warn',
        `Missed ${missed.length - 1} scheduled run(s) while down (${new Date(missed[0]!).toISOString()} to ${new Date(missed.at(-2)!).toISOString()}); running one catch-up for ${new Date(newest).toISOString()}.`,
      );
    await this.run(entry.target, { cron: entry.target.cron, scheduledTime: newest, catchUp: true });
  }

  /** Reports `skipped` ticks that will never run, and the tick run now if it is late. */
  private countMissed(target: ScheduleTarget, skipped: number, tick: number): void {
    if (skipped > 0) this.missed(target, 'skipped', skipped);
    if (this.now() - tick > CRON_LATE_MS) this.missed(target, 'late', 1);
  }

  private async run(target: ScheduleTarget, event: ScheduledEvent): Promise<void> {
    try {
      await this.fire(target, event);
    } catch (err) {
      this.note(
        target,
        'error',
        `scheduled() for ${new Date(event.scheduledTime).toISOString()} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** Ticks t with after < t <= until (at most 1000, newest last). */
  private ticksBetween(entry: Entry, after: number, until: number): number[] {
    const out: number[] = [];
    let next = entry.cron.nextRun(new Date(after));
    while (next && next.getTime() <= until && out.length < 1000) {
      out.push(next.getTime());
      next = entry.cron.nextRun(next);
    }
    return out;
  }

  /** Sets the timer for the next tick, or for a retry `retryMs` from now (a claim that failed). */
  private arm(entry: Entry, retryMs?: number): void {
    const next = entry.cron.nextRun(new Date(this.now()));
    if (!next) return;
    // Timers longer than ~24 days overflow; wake up daily and re-check instead.
    const wait = Math.min(
      retryMs ?? Number.POSITIVE_INFINITY,
      Math.max(0, next.getTime() - this.now()),
      86_400_000,
    );
    entry.armedAt ??= this.now();
    entry.timer = setTimeout(() => {
      let retry: number | undefined;
      this.runEntry(entry)
        .catch((err: unknown) => {
          // The state store failed (down, or paused past its timeout): the tick is tried again every
          // few seconds, and runs late once the store answers.
          retry = CLAIM_RETRY_MS;
          if (!entry.failing)
            this.note(
              entry.target,
              'warn',
              `The scheduled run at ${next.toISOString()} could not be claimed (${err instanceof Error ? err.message : String(err)}); it runs late once the state store answers.`,
            );
          entry.failing = true;
        })
        .then(() => {
          if (retry === undefined) entry.failing = false;
          if (this.entries.get(scopedKey(entry.target.namespace, entry.target.functionName)) === entry)
            this.arm(entry, retry);
        });
    }, wait + 5);
    entry.timer.unref();
  }

  private state(target: ScheduleTarget): Promise<KObject | undefined> {
    return this.store.get(SCHEDULE_STATE, target.namespace, target.functionName);
  }

  /** Compare-and-set of lastTick: true for exactly one caller per tick across the cluster. */
  private async claim(target: ScheduleTarget, tick: number, seen: KObject | undefined): Promise<boolean> {
    if (seen && Number((seen.spec as { lastTick: number }).lastTick) >= tick) return false;
    const object: KObject = {
      apiVersion: API_VERSION,
      kind: SCHEDULE_STATE,
      metadata: {
        name: target.functionName,
        namespace: target.namespace,
        uid: seen?.metadata.uid ?? scopedKey(target.namespace, target.functionName),
        resourceVersion: '',
        generation: 1,
        creationTimestamp: seen?.metadata.creationTimestamp ?? new Date().toISOString(),
      },
      spec: { lastTick: tick },
    };
    try {
      await this.store.put(
        object,
        seen ? { resourceVersion: seen.metadata.resourceVersion } : { mustNotExist: true },
      );
      return true;
    } catch (err) {
      if (err instanceof KylixError && (err.code === 'ERR_CONFLICT' || err.code === 'ERR_ALREADY_EXISTS'))
        return false;
      throw err;
    }
  }
}
