/**
 * HTTP ingress: gives every request an id, enforces URL and body limits, finds the function by host,
 * path and method, picks a revision (traffic split, or a tag named by header or host prefix), and
 * proxies to an instance of it. On shutdown it stops accepting and drains what is in flight.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KylixError } from '../errors.js';
import type { RouteSpec } from '../resources/kinds.js';
import type { ServingTarget } from '../resources/serving.js';
import { type Lease, PoolBusyError, type Runtime } from '../runtime/runtime.js';
import { serveAsset } from './assets.js';
import { Admission, FunctionGate } from './concurrency.js';
import { platformErrorCode, sendError } from './errors.js';
import { proxy } from './proxy.js';
import { RefusalPacer } from './refusal.js';
import { Router } from './router.js';
import { splitTaggedHost, type TrafficShare, TrafficSplit } from './traffic.js';

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

/** The header that picks a tagged revision (or a revision number). */
export const REVISION_HEADER = 'kylix-revision';
/** The longest URL the gateway accepts. */
const MAX_URL_BYTES = 16 * 1024;
/** The largest header block Node will parse; beyond it Node answers 431. */
const MAX_HEADER_BYTES = 32 * 1024;

/** A revision by tag, when the function has that tag (never an inherited property such as "__proto__"). */
function ownTag(tags: Record<string, TrafficShare> | undefined, tag: string): TrafficShare | undefined {
  return tags && Object.hasOwn(tags, tag) ? tags[tag] : undefined;
}

interface Served {
  target: ServingTarget;
  split: TrafficSplit;
  /** The function's admission state: kept across setFunction, so what its limit learnt stays. */
  gate: FunctionGate;
  /** The function's name, for messages. */
  name: string;
}

/** See the file comment. */
export class Gateway {
  readonly router = new Router();
  private readonly serving = new Map<string, Served>();
  private readonly admission = new Admission();
  private readonly pacer = new RefusalPacer();
  private server?: Server;
  private readonly bootId = randomBytes(4).toString('hex');
  private counter = 0;
  private active = 0;
  private draining = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly onInvocation: (i: Invocation) => void = () => {},
    private readonly onRefused: RefusalHook = () => {},
  ) {}

  /** Points a function ("namespace/name") at routes and the revisions that serve it. */
  setFunction(functionKey: string, routes: RouteSpec[], target: ServingTarget, seniority?: string): void {
    this.router.setRoutes(functionKey, routes, seniority);
    const max = target.limits.maxConcurrency ?? Number.POSITIVE_INFINITY;
    let gate = this.serving.get(functionKey)?.gate;
    if (gate) gate.setMaxConcurrency(max);
    else gate = new FunctionGate(max);
    const name = functionKey.split('/')[1] ?? functionKey;
    this.serving.set(functionKey, { target, split: new TrafficSplit(target.shares), gate, name });
  }

  /** Removes a function: its routes answer 404 from now on. */
  removeFunction(functionKey: string): void {
    this.router.remove(functionKey);
    this.serving.delete(functionKey);
  }

  /** A new request id: unique per gateway process, cheap to make. */
  nextRequestId(): string {
    return `${this.bootId}-${(++this.counter).toString(36)}`;
  }

  /** Starts listening; resolves with the bound address. */
  listen(port: number, host: string): Promise<AddressInfo> {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 65_000 }, (req, res) => {
      void this.handle(req, res);
    });
    // Requests Node rejects before they reach us (headers too large, malformed) still get a JSON error and an id.
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooLarge ? 431 : 400;
      const body = JSON.stringify({
        error: {
          code: tooLarge ? 'ERR_HEADERS_TOO_LARGE' : 'ERR_BAD_REQUEST',
          message: tooLarge
            ? `The request headers are larger than ${MAX_HEADER_BYTES} bytes.`
            : 'The request is not valid HTTP.',
          requestId: this.nextRequestId(),
        },
      });
      socket.end(
        `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server.address() as AddressInfo));
    });
  }

  /**
   * Stops accepting connections, lets in-flight requests finish (each response closes its
   * connection) for at most `graceMs`, then closes what is left.
   */
  async close(graceMs = 30_000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.draining = true;
    this.pacer.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    server.closeAllConnections();
    this.admission.close();
    await closed;
  }

  /** Requests being served right now, over all functions. */
  activeRequests(): number {
    return this.active;
  }

  /** Serves one request from a client. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = this.nextRequestId();
    if (this.draining) res.setHeader('connection', 'close');
    const url = req.url ?? '/';
    if (Buffer.byteLength(url) > MAX_URL_BYTES) {
      return sendError(
        res,
        new KylixError('ERR_URL_TOO_LONG', `The URL is longer than ${MAX_URL_BYTES} bytes.`),
        requestId,
      );
    }
    // RFC 9112: a request with more than one Host is refused, so the router and the function can
    // never see two different hosts. (Node already refuses an HTTP/1.1 request with none.)
    let hosts = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2)
      if ((raw[i] as string).length === 4 && raw[i]?.toLowerCase() === 'host') hosts++;
    if (hosts > 1) {
      req.resume();
      return sendError(
        res,
        new KylixError('ERR_BAD_REQUEST', 'The request has more than one Host header.'),
        requestId,
        { connection: 'close' },
      );
    }
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    let host = req.headers.host ?? '';
    let tag = req.headers[REVISION_HEADER] as string | undefined;
    const tagged = splitTaggedHost(host);
    if (tagged) {
      const m = this.router.match(tagged.host, method, path);
      if (m.found && ownTag(this.serving.get(m.functionKey)?.target.tags, tagged.tag)) {
        host = tagged.host;
        tag = tagged.tag;
        // The function sees the host its routes are written for, as with the untagged address.
        req.headers.host = host;
      }
    }
    const match = this.router.match(host, method, path);
    if (!match.found) {
      const err = match.methodNotAllowed
        ? new KylixError('ERR_METHOD_NOT_ALLOWED', `No function accepts ${method} ${path}.`)
        : new KylixError(
            'ERR_NO_ROUTE',
            `No function is routed at ${host}${path}. See the routes with: kylix get functions`,
          );
      req.resume();
      return sendError(res, err, requestId);
    }
    const assets = this.serving.get(match.functionKey)?.target.assets;
    if (assets && serveAsset(req, res, assets, path, q === -1 ? '' : url.slice(q), requestId)) return;
    await this.dispatch(req, res, match.functionKey, url, requestId, tag);
  }

  /** Sends a request to one of a function's revisions, whatever the routes say (also for `kylix invoke`). */
  async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId = this.nextRequestId(),
    tag = req.headers[REVISION_HEADER] as string | undefined,
  ): Promise<void> {
    const served = this.serving.get(functionKey);
    const name = served?.name ?? functionKey.split('/')[1] ?? functionKey;
    let share: TrafficShare | undefined;
    const fail = (err: KylixError, headers?: Record<string, string>) => {
      req.resume();
      sendError(res, err, requestId, headers);
      this.onRefused(functionKey, share?.revision, err.status, err.code);
    };
    if (!served) {
      return fail(
        new KylixError(
          'ERR_NOT_READY',
          `${name} has no ready revision yet. See why with: kylix describe function ${name}`,
        ),
        { 'retry-after': '1' },
      );
    }
    const { target } = served;
    if (target.failure !== undefined)
      return fail(
        new KylixError(
          'ERR_FUNCTION_NOT_STARTED',
          `${name} failed to start (its module threw while loading, or a binding is missing). See why with: kylix describe function ${name}`,
        ),
      );
    if (tag) {
      share = ownTag(target.tags, tag) ?? target.shares.find((s) => String(s.revision) === tag);
      if (!share)
        return fail(
          new KylixError(
            'ERR_NOT_FOUND',
            `${name} has no revision tagged "${tag}". See its traffic with: kylix describe function ${name}`,
          ),
        );
    } else {
      share = served.split.pick();
    }
    if (!share || !this.runtime.has(share.revisionKey)) {
      return fail(
        new KylixError(
          'ERR_NOT_READY',
          `${name} has no ready revision yet. See why with: kylix describe function ${name}`,
        ),
        { 'retry-after': '1' },
      );
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > target.limits.maxRequestBytes) {
      return fail(
        new KylixError(
          'ERR_BODY_TOO_LARGE',
          `The request body is over ${target.limits.maxRequestBytes} bytes, the limit of ${name} (spec.limits.maxRequestBytes).`,
        ),
        { connection: 'close' },
      );
    }

    // Past the node's or the function's limit: a short wait at most, then a cheap refusal.
    const { gate } = served;
    let verdict = this.admission.enter(gate);
    if (verdict !== undefined && typeof verdict !== 'string') {
      verdict = await verdict;
      // The client went away while it waited: its slot goes to the next one, not to a dead exchange.
      if (verdict === undefined && req.socket.destroyed) return this.admission.leave(gate, undefined);
    }
    if (verdict !== undefined) {
      this.pacer.refuse(res, verdict, name, requestId);
      return this.onRefused(functionKey, share.revision, res.statusCode, verdict);
    }

    const started = performance.now();
    this.active++;
    let lease: Lease | undefined;
    /** When the request went to its instance (after admission and any cold start); 0 if it did not. */
    let sentAt = 0;
    try {
      try {
        lease = await this.runtime.acquire(share.revisionKey);
      } catch (err) {
        // Too many already wait for its instance to start: refused like any overload.
        if (err instanceof PoolBusyError) return this.pacer.refuse(res, 'ERR_OVERLOADED', name, requestId);
        const message = err instanceof Error ? err.message : String(err);
        return fail(new KylixError('ERR_NOT_READY', `${name} could not start: ${message}`), {
          'retry-after': '1',
        });
      }
      const instance = lease.instance;
      sentAt = performance.now();
      await proxy({
        req,
        res,
        channel: instance.channel,
        requestId,
        path,
        functionName: name,
        limits: target.limits,
        onInstanceFailure: () => this.runtime.instanceFailed(instance.id),
      });
    } finally {
      lease?.release();
      this.active--;
      // Only served requests teach the limits their latency (a refusal's would pull it down).
      const endedAt = performance.now();
      this.admission.leave(gate, lease ? endedAt - started : undefined);
      this.onInvocation({
        functionKey,
        revision: share.revision,
        requestId,
        method: req.method ?? 'GET',
        path,
        status: res.statusCode,
        durationMs: endedAt - started,
        instanceMs: sentAt ? endedAt - sentAt : undefined,
        cold: lease?.cold ?? false,
        startupMs: lease?.waitedMs ?? 0,
        errorCode: platformErrorCode(res),
      });
    }
  }
}
