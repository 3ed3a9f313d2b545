/**
 * HTTP ingress: gives every request an id, enforces URL and body limits, finds the function by host,
 * path and method, picks a revision (traffic split, or a tag named by header or host prefix), and
 * proxies to an instance of it. On shutdown it stops accepting and drains what is in flight.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { nameOf, namespaceOf } from '../bindings/identity.js';
import { KylixError } from '../errors.js';
import type { RouteSpec } from '../resources/kinds.js';
import type { ServingTarget } from '../resources/serving.js';
import type { Runtime } from '../runtime/runtime.js';
import { serveAsset } from './assets.js';
import { Admission, FunctionGate } from './concurrency.js';
import { sendError } from './errors.js';
import {
  GatewayCall,
  type GatewayHooks,
  type Invocation,
  notReady,
  RETRY,
  type RefusalHook,
  Refused,
  type Served,
} from './gateway-call.js';
import { RefusalPacer } from './refusal.js';
import { Router } from './router.js';
import { splitTaggedHost, type TrafficShare, TrafficSplit } from './traffic.js';

export type { Invocation, RefusalHook } from './gateway-call.js';

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

/** The responses of a connection's pipelined requests that still wait for their turn on it. */
const WAITING = Symbol('kylix.waitingResponses');
type Connection = Socket & { [WAITING]?: Set<ServerResponse> };

/**
 * A pipelined request's response waits behind the earlier ones on its connection, with no socket of
 * its own. Node forgets it if the client goes away meanwhile: no 'close' ever comes, so the call in
 * the function would never be cancelled and its slot, lease and admission never given back. Here
 * the connection's end closes it as it closes any other response (one listener per connection).
 */
function closeWithConnection(res: ServerResponse, socket: Connection): void {
  // Gone already (the API's proxy serves after awaits of its own): closed as soon as it is handled.
  if (socket.destroyed) {
    setImmediate(closeResponse, res);
    return;
  }
  let waiting = socket[WAITING];
  if (!waiting) {
    const set = new Set<ServerResponse>();
    socket[WAITING] = waiting = set;
    socket.once('close', () => {
      for (const r of set) closeResponse(r);
      set.clear();
    });
  }
  waiting.add(res);
  // Its turn came: from here the socket's own 'close' reaches it.
  res.once('socket', () => waiting.delete(res));
}

/** Closes a response that never had its socket, as the socket's end closes one that has. */
function closeResponse(res: ServerResponse): void {
  if (res.socket || res.destroyed) return;
  res.destroy();
  res.emit('close');
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
  private draining = false;
  /** What each request's GatewayCall uses of the gateway. */
  private readonly hooks: GatewayHooks;
  /**
   * `kylix dev` only: wrangler dev's test route. `GET /__scheduled?cron=…` runs scheduled() of the
   * function routed at that path (as `kylix trigger scheduled` does) instead of its fetch().
   */
  testScheduled?: (functionKey: string, cron: string | undefined) => Promise<unknown>;

  constructor(
    private readonly runtime: Runtime,
    onInvocation: (i: Invocation) => void = () => {},
    private readonly onRefused: RefusalHook = () => {},
  ) {
    this.hooks = {
      runtime,
      admission: this.admission,
      pacer: this.pacer,
      onInvocation,
      onRefused,
      active: 0,
    };
  }

  /** Points a function ("namespace/name") at routes and the revisions that serve it. */
  setFunction(functionKey: string, routes: RouteSpec[], target: ServingTarget, seniority?: string): void {
    this.router.setRoutes(functionKey, routes, seniority);
    const max = target.limits.maxConcurrency ?? Number.POSITIVE_INFINITY;
    let gate = this.serving.get(functionKey)?.gate;
    if (gate) gate.setMaxConcurrency(max);
    else gate = new FunctionGate(max, this.admission.joinNamespace(namespaceOf(functionKey)));
    const name = nameOf(functionKey);
    this.serving.set(functionKey, { target, split: new TrafficSplit(target.shares), gate, name });
  }

  /** Removes a function: its routes answer 404 from now on. */
  removeFunction(functionKey: string): void {
    this.router.remove(functionKey);
    if (this.serving.delete(functionKey)) this.admission.leaveNamespace(namespaceOf(functionKey));
  }

  /** A new request id: unique per gateway process, cheap to make. */
  nextRequestId(): string {
    return `${this.bootId}-${(++this.counter).toString(36)}`;
  }

  /** Starts listening; resolves with the bound address. */
  listen(port: number, host: string): Promise<AddressInfo> {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 65_000 }, (req, res) => {
      this.handle(req, res);
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
    while (this.hooks.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    server.closeAllConnections();
    this.admission.close();
    await closed;
  }

  /** Requests being served right now, over all functions. */
  activeRequests(): number {
    return this.hooks.active;
  }

  /** Serves one request from a client. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = this.nextRequestId();
    if (this.draining) res.setHeader('connection', 'close');
    const url = req.url ?? '/';
    if (Buffer.byteLength(url) > MAX_URL_BYTES) {
      sendError(
        res,
        new KylixError('ERR_URL_TOO_LONG', `The URL is longer than ${MAX_URL_BYTES} bytes.`),
        requestId,
      );
      return;
    }
    // RFC 9112: a request with more than one Host is refused, so the router and the function can
    // never see two different hosts. (Node already refuses an HTTP/1.1 request with none.)
    let hosts = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2)
      if ((raw[i] as string).length === 4 && raw[i]?.toLowerCase() === 'host') hosts++;
    if (hosts > 1) {
      req.resume();
      sendError(
        res,
        new KylixError('ERR_BAD_REQUEST', 'The request has more than one Host header.'),
        requestId,
        {
          connection: 'close',
        },
      );
      return;
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
      sendError(res, err, requestId);
      return;
    }
    if (this.testScheduled && path === '/__scheduled' && (method === 'GET' || method === 'POST')) {
      this.runScheduled(req, res, match.functionKey, url, requestId, this.testScheduled);
      return;
    }
    const assets = this.serving.get(match.functionKey)?.target.assets;
    if (assets && serveAsset(req, res, assets, path, q === -1 ? '' : url.slice(q), requestId)) return;
    this.serve(req, res, match.functionKey, url, requestId, tag);
  }

  /** See testScheduled: answers as wrangler dev does, "Ran scheduled event" or the handler's error. */
  private runScheduled(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    url: string,
    requestId: string,
    run: NonNullable<Gateway['testScheduled']>,
  ): void {
    req.resume();
    const cron = new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('cron') ?? undefined;
    run(functionKey, url.includes('?') ? cron : undefined).then(
      (answer) => {
        const outcome = (answer ?? {}) as { ok?: boolean; error?: string };
        if (outcome.ok === false) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': requestId });
          res.end(`scheduled() failed: ${outcome.error ?? 'see the function log'}\n`);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': requestId });
        res.end('Ran scheduled event\n');
      },
      (err: unknown) =>
        sendError(
          res,
          err instanceof KylixError
            ? err
            : new KylixError('ERR_INTERNAL', String((err as Error)?.message ?? err)),
          requestId,
        ),
    );
  }

  /**
   * Sends a request to one of a function's revisions, whatever the routes say (`kylix invoke`);
   * resolves once it has been answered, however it was.
   */
  dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId = this.nextRequestId(),
    tag = req.headers[REVISION_HEADER] as string | undefined,
  ): Promise<void> {
    return new Promise((resolve) => this.serve(req, res, functionKey, path, requestId, tag, resolve));
  }

  /**
   * What dispatch() does, without a promise: a warm request goes through with no await at all (a
   * promise and an async frame per step were a third of the gateway's own allocations per request).
   * `done` is called once the request has been answered, however it was.
   */
  protected serve(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    path: string,
    requestId: string,
    tag: string | undefined,
    done?: () => void,
  ): void {
    if (res.socket === null) closeWithConnection(res, req.socket);
    const served = this.serving.get(functionKey);
    if (!served) {
      this.refuse(
        req,
        res,
        functionKey,
        requestId,
        new Refused(notReady(nameOf(functionKey)), undefined, RETRY),
        done,
      );
      return;
    }
    const share = this.choose(served, tag, req);
    if (share instanceof Refused) {
      this.refuse(req, res, functionKey, requestId, share, done);
      return;
    }
    const call = new GatewayCall(this.hooks, req, res, functionKey, path, requestId, served, share, done);
    // Past the node's or the function's limit: a short wait at most, then a cheap refusal.
    const verdict = this.admission.enter(served.gate);
    if (verdict === undefined || typeof verdict === 'string') {
      call.admitted(verdict);
      return;
    }
    verdict.then((v) => {
      // The client went away while it waited: its slot goes to the next one, not to a dead exchange.
      if (v === undefined && req.socket.destroyed) {
        this.admission.leave(served.gate, undefined);
        done?.();
        return;
      }
      call.admitted(v);
    });
  }

  /** Answers with a platform error before any instance saw the request (it makes no invocation record). */
  private refuse(
    req: IncomingMessage,
    res: ServerResponse,
    functionKey: string,
    requestId: string,
    { error, revision, headers }: Refused,
    done: (() => void) | undefined,
  ): void {
    req.resume();
    sendError(res, error, requestId, headers);
    this.onRefused(functionKey, revision, error.status, error.code);
    done?.();
  }

  /** The revision that serves a request to the function, or why none may. */
  private choose(served: Served, tag: string | undefined, req: IncomingMessage): TrafficShare | Refused {
    const { target, name } = served;
    if (target.failure !== undefined)
      return new Refused(
        new KylixError(
          'ERR_FUNCTION_NOT_STARTED',
          `${name} failed to start (its module threw while loading, or a binding is missing). See why with: kylix describe function ${name}`,
        ),
      );
    const share = tag
      ? (ownTag(target.tags, tag) ?? target.shares.find((s) => String(s.revision) === tag))
      : served.split.pick();
    if (tag && !share)
      return new Refused(
        new KylixError(
          'ERR_NOT_FOUND',
          `${name} has no revision tagged "${tag}". See its traffic with: kylix describe function ${name}`,
        ),
      );
    if (!share || !this.runtime.has(share.revisionKey))
      return new Refused(notReady(name), share?.revision, RETRY);
    if (Number(req.headers['content-length'] ?? 0) > target.limits.maxRequestBytes)
      return new Refused(
        new KylixError(
          'ERR_BODY_TOO_LARGE',
          `The request body is over ${target.limits.maxRequestBytes} bytes, the limit of ${name} (spec.limits.maxRequestBytes).`,
        ),
        share.revision,
        { connection: 'close' },
      );
    return share;
  }
}
