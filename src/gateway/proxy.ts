/**
 * Forwards one HTTP request to a function instance over its Unix socket and streams the answer
 * back, mapping instance failures to platform errors (502 threw or crashed, 503 CPU or memory
 * limit, 504 timeout, 413 body). The wall-time limit covers the whole exchange, body included.
 */
import { type Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { KylixError } from '../errors.js';
import { fateOf } from '../runtime/instance-fates.js';
// EVENT_HEADER is the supervisor's alone: a client that sends it must not reach queue() or scheduled().
import { ERROR_HEADER, EVENT_HEADER, REQUEST_ID_HEADER } from '../sandbox/protocol.js';
import { REQUEST_ID, sendError } from './errors.js';

/** Limits the proxy enforces for one call. */
export interface ProxyLimits {
  timeoutMs: number;
  maxRequestBytes: number;
  /** Requests the function may serve at once (spec.limits.maxConcurrency); more get 429. */
  maxConcurrency?: number;
}

/** What the caller needs to name in errors. */
export interface ProxyCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** The instance's Unix socket and the keep-alive agent for it. */
  socketPath: string;
  agent: Agent;
  requestId: string;
  /** The path (and query) to send to the function. */
  path: string;
  functionName: string;
  limits: ProxyLimits;
  /** Called when the instance's connection failed (it crashed or is gone). */
  onInstanceFailure(): void;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

/** Proxies the call; resolves when the response has ended (or failed). Never rejects. */
export function proxy(call: ProxyCall): Promise<void> {
  const { req, res, requestId, limits } = call;
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve();
    };
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !HOP_BY_HOP.has(k) && k !== EVENT_HEADER) headers[k] = v;
    headers[REQUEST_ID_HEADER] = requestId;

    const upstream = httpRequest({
      socketPath: call.socketPath,
      agent: call.agent,
      method: req.method,
      path: call.path,
      headers,
    });

    const fail = (err: KylixError) => {
      upstream.destroy();
      sendError(res, err, requestId);
      finish();
    };
    const timer = setTimeout(() => {
      if (res.headersSent) {
        // Answering already: the stream is cut, and the instance keeps serving others.
        upstream.destroy();
        res.destroy();
        finish();
        return;
      }
      // A handler that has not answered in time may be stuck: its instance is stopped.
      call.onInstanceFailure();
      fail(
        new KylixError(
          'ERR_TIMEOUT',
          `${call.functionName} did not answer within ${limits.timeoutMs} ms (spec.limits.timeoutMs). Make it answer sooner or raise the limit.`,
        ),
      );
    }, limits.timeoutMs);

    upstream.on('response', (up) => {
      if (up.headers[ERROR_HEADER]) {
        up.resume();
        fail(
          new KylixError(
            'ERR_FUNCTION_THREW',
            `${call.functionName} threw an uncaught exception. Its log has the stack trace: kylix logs ${call.functionName}`,
          ),
        );
        return;
      }
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      out[REQUEST_ID] = requestId;
      res.writeHead(up.statusCode ?? 200, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
      res.on('finish', finish);
    });
    upstream.on('error', () => {
      if (done) return;
      call.onInstanceFailure();
      // The sandbox may have stopped the instance for a limit; its message races the broken socket.
      void fateOf(call.socketPath, call.functionName).then((fate) => {
        if (done) return;
        fail(
          fate ??
            new KylixError(
              'ERR_FUNCTION_CRASHED',
              `${call.functionName} crashed while handling the request. Its log may say why: kylix logs ${call.functionName}`,
            ),
        );
      });
    });

    // The client went away: cancel the call inside the function (request.signal aborts there).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
      finish();
    });

    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxRequestBytes) {
        req.unpipe(upstream);
        fail(
          new KylixError(
            'ERR_BODY_TOO_LARGE',
            `The request body is over ${limits.maxRequestBytes} bytes, the limit of ${call.functionName} (spec.limits.maxRequestBytes).`,
          ),
        );
        req.resume();
      }
    });
    req.pipe(upstream);
  });
}
