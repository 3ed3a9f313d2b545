/**
 * Admission control. Each function has an adaptive concurrency limit (`adaptive-limit.ts`, never
 * above spec.limits.maxConcurrency) and a short FIFO wait queue; the node has its own adaptive
 * limit over all functions, under its hard capacity. A request past the node's limit is refused at
 * once (503 ERR_OVERLOADED); past its function's limit it waits in the queue, for a few ms of work
 * at most, and when the queue is full or its wait runs out it is refused (429
 * ERR_TOO_MANY_REQUESTS). Nothing queues without bound, and no request has a timer of its own:
 * one sweep, running only while some queue holds requests, refuses the ones that waited too long.
 *
 * Tenants share the node fairly. While the node serves more than one namespace, one namespace's
 * functions together hold at most NAMESPACE_SHARE of the node's limit (429 ERR_NAMESPACE_LIMIT past
 * it), so requests that never end cannot take every slot from the others. And the node's limit
 * learns from each request's latency against its own function's usual latency, not in ms: a
 * function that is slow by nature (a minute-long request) tells nothing about the node's load.
 */
import { availableParallelism } from 'node:os';
import { AdaptiveLimit } from './adaptive-limit.js';

/** Requests one node serves at once, across all functions, unless configured (env KYLIX_MAX_INFLIGHT). */
export const DEFAULT_NODE_CAPACITY = Number(process.env.KYLIX_MAX_INFLIGHT) || 10_000;
/** The node's adaptive limit before it has measured anything. */
const NODE_INITIAL_LIMIT = 1000;
/** Whether the limits adapt to latency (env KYLIX_ADAPTIVE_CONCURRENCY=0 keeps only the hard caps). */
export const ADAPTIVE = process.env.KYLIX_ADAPTIVE_CONCURRENCY !== '0';
/** A queue holds at least this many requests… */
const QUEUE_MIN = 8;
/** …or a quarter of the function's limit, whichever is more. */
const QUEUE_SHARE = 0.25;
/** A queued request waits twice the function's baseline latency, within these bounds (ms). */
const QUEUE_WAIT_MIN_MS = 10;
const QUEUE_WAIT_MAX_MS = 100;
/** How often the sweep looks for requests that waited too long. */
const SWEEP_MS = 5;

/**
 * The share of the node's limit one namespace's requests may hold at once while the node serves
 * other namespaces too (env KYLIX_NAMESPACE_SHARE, a fraction; 1 turns it off).
 */
export const NAMESPACE_SHARE = Math.min(1, Number(process.env.KYLIX_NAMESPACE_SHARE) || 0.5);
/** How long a function's usual latency takes to follow a lasting rise (a fall it follows at once). */
const USUAL_RISE_MS = 20_000;
/**
 * The most one request tells the node's limit (as a multiple of its function's usual latency): a
 * function with two speeds (a quick 304 beside a slow query) must not read as a node 1,000 times
 * slower than usual.
 */
const MAX_LATENCY_RATIO = 4;
/**
 * The node's limit never falls below this: whatever a tenant's latencies teach it, the node keeps
 * serving (each namespace still holds at most its share of it).
 */
const NODE_MIN_LIMIT = 200;

/** Why a request was refused: the node is full (503), its function is (429), or its namespace's share is (429). */
export type Refusal = 'ERR_OVERLOADED' | 'ERR_TOO_MANY_REQUESTS' | 'ERR_NAMESPACE_LIMIT';

/** What enter() decided: admitted (undefined), refused, or queued (settles to one of those). */
export type Verdict = Refusal | undefined | Promise<Refusal | undefined>;

interface Waiter {
  since: number;
  resolve(verdict: Refusal | undefined): void;
}

/** One namespace's part of the node: the requests of all its functions in flight. */
export class NamespaceGate {
  inFlight = 0;
  /** Functions of the namespace the gateway serves; the namespace counts while it has one. */
  functions = 0;
}

/** One function's share of admission: its requests in flight, its limit and its queue. */
export class FunctionGate {
  /** Requests of this function being served. */
  inFlight = 0;
  readonly limit: AdaptiveLimit;
  private queue: Waiter[] = [];
  private head = 0;
  /** Its usual latency (ms) and when that last moved: see latencyRatio(). */
  private usualMs = 0;
  private usualAt = 0;

  constructor(
    /** spec.limits.maxConcurrency: the hard cap. */
    public maxConcurrency: number,
    /** The namespace the function belongs to (none: counted against no namespace's share). */
    readonly namespace?: NamespaceGate,
  ) {
    this.limit = new AdaptiveLimit({ initial: Math.min(100, maxConcurrency), max: maxConcurrency });
  }

  /**
   * A finished request's latency as a multiple of this function's usual latency, which follows a
   * fall at once and a lasting rise over USUAL_RISE_MS: about 1 whatever the function does, and
   * above 1 while the node is slower than it usually is for this function.
   */
  latencyRatio(rttMs: number, now: number): number {
    if (this.usualMs === 0 || rttMs < this.usualMs) this.usualMs = rttMs;
    else this.usualMs += (rttMs - this.usualMs) * Math.min(1, (now - this.usualAt) / USUAL_RISE_MS);
    this.usualAt = now;
    return Math.min(MAX_LATENCY_RATIO, rttMs / Math.max(this.usualMs, 0.01));
  }

  /** A new spec.limits.maxConcurrency (a new revision of the function). */
  setMaxConcurrency(max: number): void {
    this.maxConcurrency = max;
    this.limit.setMax(max);
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Requests admitted at once right now: the adaptive limit, or the hard cap when adaptation is off. */
  get admitLimit(): number {
    return ADAPTIVE ? this.limit.limit : this.maxConcurrency;
  }

  /** How many requests may wait. */
  get queueCapacity(): number {
    return Math.max(QUEUE_MIN, Math.ceil(this.admitLimit * QUEUE_SHARE));
  }

  /** How long one may wait (ms): a few of this function's requests' worth. */
  get maxWaitMs(): number {
    return Math.min(QUEUE_WAIT_MAX_MS, Math.max(QUEUE_WAIT_MIN_MS, 2 * this.limit.baseline));
  }

  /** @internal */ push(waiter: Waiter): void {
    this.queue.push(waiter);
  }

  /** @internal Takes the oldest waiter. */
  shift(): Waiter | undefined {
    const w = this.queue[this.head];
    if (!w) return undefined;
    this.queue[this.head++] = undefined as unknown as Waiter;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  /** @internal The oldest waiter, left in place. */
  peek(): Waiter | undefined {
    return this.queue[this.head];
  }
}

/** Counts requests in flight per function and per node, and decides who is served; see the file comment. */
export class Admission {
  private total = 0;
  readonly nodeLimit: AdaptiveLimit;
  /** Gates with requests waiting, for the sweep. */
  private readonly waiting = new Set<FunctionGate>();
  private sweeper?: NodeJS.Timeout;
  /** The namespaces the gateway serves functions of. */
  private readonly namespaces = new Map<string, NamespaceGate>();

  constructor(
    private readonly capacity = DEFAULT_NODE_CAPACITY,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.nodeLimit = new AdaptiveLimit({
      initial: Math.min(capacity, NODE_INITIAL_LIMIT * Math.max(1, availableParallelism() / 2)),
      min: Math.min(capacity, NODE_MIN_LIMIT),
      max: capacity,
    });
  }

  /** Requests in flight on the node. */
  get inFlight(): number {
    return this.total;
  }

  /** The gate of `namespace`, for one more of its functions; leaveNamespace() when it goes. */
  joinNamespace(namespace: string): NamespaceGate {
    let gate = this.namespaces.get(namespace);
    if (!gate) {
      gate = new NamespaceGate();
      this.namespaces.set(namespace, gate);
    }
    gate.functions++;
    return gate;
  }

  /** One function of `namespace` is no longer served. */
  leaveNamespace(namespace: string): void {
    const gate = this.namespaces.get(namespace);
    if (gate && --gate.functions <= 0) this.namespaces.delete(namespace);
  }

  /** Requests one namespace may hold at once, while the node serves others too. */
  get namespaceLimit(): number {
    const node = ADAPTIVE ? Math.min(this.capacity, this.nodeLimit.limit) : this.capacity;
    return Math.max(1, Math.floor(node * NAMESPACE_SHARE));
  }

  /** Whether a request of this gate's namespace would take more than the namespace's share. */
  private pastShare(gate: FunctionGate): boolean {
    const ns = gate.namespace;
    return ns !== undefined && this.namespaces.size > 1 && ns.inFlight >= this.namespaceLimit;
  }

  private admit(gate: FunctionGate): void {
    gate.inFlight++;
    if (gate.namespace) gate.namespace.inFlight++;
    this.total++;
  }

  /** Admits a request, queues it, or refuses it; every admitted request must leave() once. */
  enter(gate: FunctionGate): Verdict {
    if (this.total >= this.capacity || (ADAPTIVE && this.total >= this.nodeLimit.limit))
      return 'ERR_OVERLOADED';
    if (this.pastShare(gate)) return 'ERR_NAMESPACE_LIMIT';
    if (gate.inFlight < gate.admitLimit && gate.queued === 0) {
      this.admit(gate);
      return undefined;
    }
    if (gate.queued >= gate.queueCapacity) return 'ERR_TOO_MANY_REQUESTS';
    return new Promise((resolve) => {
      gate.push({ since: this.now(), resolve });
      this.waiting.add(gate);
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    });
  }

  /** An admitted request finished after `rttMs` (undefined: not served): the limits learn from it, and its slot passes on. */
  leave(gate: FunctionGate, rttMs: number | undefined): void {
    const now = this.now();
    if (ADAPTIVE && rttMs !== undefined) {
      gate.limit.sample(rttMs, now, gate.inFlight);
      this.nodeLimit.sample(gate.latencyRatio(rttMs, now), now, this.total);
    }
    gate.inFlight--;
    if (gate.namespace) gate.namespace.inFlight--;
    this.total--;
    if (gate.queued > 0) this.drain(gate, now);
  }

  /** Stops the sweep (the gateway is closing). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const gate of this.waiting)
      for (let w = gate.shift(); w; w = gate.shift()) w.resolve('ERR_OVERLOADED');
    this.waiting.clear();
  }

  /** Refuses the waiters past their wait, then admits the oldest ones while slots are free. */
  private drain(gate: FunctionGate, now: number): void {
    const maxWait = gate.maxWaitMs;
    for (let w = gate.peek(); w && now - w.since > maxWait; w = gate.peek()) {
      gate.shift();
      w.resolve('ERR_TOO_MANY_REQUESTS');
    }
    while (
      gate.queued > 0 &&
      gate.inFlight < gate.admitLimit &&
      this.total < this.capacity &&
      !this.pastShare(gate)
    ) {
      this.admit(gate);
      gate.shift()!.resolve(undefined);
    }
    if (gate.queued === 0) this.waiting.delete(gate);
  }

  private sweep(): void {
    const now = this.now();
    for (const gate of this.waiting) this.drain(gate, now);
    if (this.waiting.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
