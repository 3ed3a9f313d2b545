/**
 * One request the gateway has routed to a function, from admission to its invocation record:
 * everything kept for it in one object, which is also what proxy() is handed (no closure, promise or
 * call object of its own per request). A warm request goes through with no await at all.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KylixError } from '../errors.js';
import type { ServingTarget } from '../resources/serving.js';
import type { InstanceChannel } from '../runtime/instance-channel.js';
import { type Lease, PoolBusyError, type Runtime } from '../runtime/runtime.js';
import type { Admission, FunctionGate, Refusal } from './concurrency.js';
import { platformErrorCode, sendError } from './errors.js';
import { type ProxyCall, type ProxyLimits, proxy } from './proxy.js';
import type { RefusalPacer } from './refusal.js';
import type { TrafficShare, TrafficSplit } from './traffic.js';

/** One finished invocation, for the function's log. */
export interface Invocation {
  functionKey: string;
  revision: number;
  requestId: string;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  /** From handing the request to its instance to the end of the response; absent if it never got one. */
  instanceMs?: number;
  cold: boolean;
  startupMs: number;
  /** The platform error the gateway answered with (ERR_TIMEOUT, ERR_CPU_LIMIT…), if it did. */
  errorCode?: string;
}

/**
 * Told of a request refused before any instance saw it (overload 429/503, not ready, body too
 * large, unknown tag); `revision` is undefined when none had been picked yet. For metrics only:
 * such requests make no invocation record.
 */
export type RefusalHook = (
  functionKey: string,
  revision: number | undefined,
  status: number,
  code: string,
) => void;

/** A function as the gateway serves it. */
export interface Served {
  target: ServingTarget;
  split: TrafficSplit;
  /** The function's admission state: kept across setFunction, so what its limit learnt stays. */
  gate: FunctionGate;
  /** The function's name, for messages. */
  name: string;
}

/** A request refused before any instance saw it: the error, the revision picked if any, extra headers. */
export class Refused {
  constructor(
    readonly error: KylixError,
    readonly revision?: number,
    readonly headers?: Record<string, string>,
  ) {}
}

export const RETRY = { 'retry-after': '1' };

/** The status recorded for a request whose client went away before it was sent on (nginx's). */
const CLIENT_CLOSED = 499;

/** The error for a function with no revision ready to serve. */
export function notReady(name: string): KylixError {
  return new KylixError(
    'ERR_NOT_READY',
    `${name} has no ready revision yet. See why with: kylix describe function ${name}`,
  );
}

/** What a GatewayCall needs of its gateway. */
export interface GatewayHooks {
  readonly runtime: Runtime;
  readonly admission: Admission;
  readonly pacer: RefusalPacer;
  onInvocation(i: Invocation): void;
  onRefused: RefusalHook;
  /** Requests being served (the gateway's count, for draining). */
  active: number;
}

/** See the file comment. */
export class GatewayCall implements ProxyCall {
  private started = 0;
  /** When the request went to its instance (after any cold start); 0 if it did not. */
  private sentAt = 0;
  private lease?: Lease;
  private over = false;
  /** It waited for an instance to start (a client that left meanwhile is still a cold call's record). */
  private coldWait = false;
  channel!: InstanceChannel;
  readonly limits: ProxyLimits;
  readonly functionName: string;

  constructor(
    private readonly gateway: GatewayHooks,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly functionKey: string,
    readonly path: string,
    readonly requestId: string,
    private readonly served: Served,
    private readonly share: TrafficShare,
    private readonly done: (() => void) | undefined,
  ) {
    this.limits = served.target.limits;
    this.functionName = served.name;
  }

  /** Admission's verdict: a refusal, or undefined to go on. */
  admitted(verdict: Refusal | undefined): void {
    const { gateway, res } = this;
    if (verdict !== undefined) {
      gateway.pacer.refuse(res, verdict, this.functionName, this.requestId);
      gateway.onRefused(this.functionKey, this.share.revision, res.statusCode, verdict);
      this.done?.();
      return;
    }
    this.started = performance.now();
    gateway.active++;
    const lease = gateway.runtime.lend(this.share.revisionKey, this.res);
    if (lease instanceof Promise) {
      this.coldWait = true;
      // A cold start: a client that leaves meanwhile gives back its slot at once, not when the
      // start completes (or never, if it never does).
      this.res.once('close', () => this.left());
      lease.then(
        (l) => this.send(l),
        (err: unknown) => this.notStarted(err),
      );
    } else this.send(lease);
  }

  /** The response closed while the call waited for its instance: the client went away. */
  private left(): void {
    if (!this.lease && !this.over) this.clientGone();
  }

  /** The client went away before anything was sent: the record says so with nginx's 499. */
  private clientGone(): void {
    this.req.resume();
    this.res.statusCode = CLIENT_CLOSED;
    this.ended();
  }

  /** No instance could be had: too many wait for one to start, or it could not start. */
  private notStarted(err: unknown): void {
    if (this.over) return;
    if (this.res.destroyed) this.clientGone();
    else if (err instanceof PoolBusyError)
      this.gateway.pacer.refuse(this.res, 'ERR_OVERLOADED', this.functionName, this.requestId);
    else {
      this.req.resume();
      const message = err instanceof Error ? err.message : String(err);
      const e = new KylixError('ERR_NOT_READY', `${this.functionName} could not start: ${message}`);
      sendError(this.res, e, this.requestId, RETRY);
      this.gateway.onRefused(this.functionKey, this.share.revision, e.status, e.code);
    }
    this.ended(); // a no-op after clientGone()
  }

  private send(lease: Lease): void {
    // The client went away while its instance started (the call ended then): the instance is given back at once.
    if (this.over) {
      lease.release();
      return;
    }
    this.lease = lease;
    if (this.res.destroyed) {
      this.clientGone();
      return;
    }
    this.channel = lease.instance.channel;
    this.sentAt = performance.now();
    try {
      proxy(this);
    } catch (err) {
      this.ended();
      throw err;
    }
  }

  /** The instance failed (it crashed, or is stuck past the time limit). */
  onInstanceFailure(): void {
    if (this.lease) this.gateway.runtime.instanceFailed(this.lease.instance.id);
  }

  /** The exchange is over (or never started): the books are closed and the record made. */
  ended(): void {
    if (this.over) return;
    this.over = true;
    const { gateway, lease, res } = this;
    // Nothing was answered (the client went away, mid-body or waiting): 499, not the default 200.
    if (!res.headersSent) res.statusCode = CLIENT_CLOSED;
    lease?.release();
    gateway.active--;
    // Only served requests teach the limits their latency (a refusal's would pull it down).
    const endedAt = performance.now();
    gateway.admission.leave(this.served.gate, lease ? endedAt - this.started : undefined);
    gateway.onInvocation({
      functionKey: this.functionKey,
      revision: this.share.revision,
      requestId: this.requestId,
      method: this.req.method ?? 'GET',
      path: this.path,
      status: res.statusCode,
      durationMs: endedAt - this.started,
      instanceMs: this.sentAt ? endedAt - this.sentAt : undefined,
      cold: lease?.cold ?? this.coldWait,
      startupMs: lease?.waitedMs ?? 0,
      errorCode: platformErrorCode(res),
    });
    this.done?.();
  }
}
