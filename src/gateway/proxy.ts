/**
 * Forwards one HTTP request to a function instance as frames on the instance's channel, and streams
 * the answer back. The gateway frames everything it forwards: Node's parser has already decided
 * where the client's request and body end, and only those bytes travel, as the body of this one
 * stream — nothing a client sends can become a second request or another client's body. The
 * request id travels in the frame's head, not as a header a client could forge. Instance failures
 * map to platform errors (502 threw or crashed, 503 CPU or memory limit, 504 timeout, 413 body);
 * the wall-time limit covers the whole exchange, body included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KylixError } from '../errors.js';
import type { ProxyLimits } from '../resources/serving.js';
import type { Fate, InstanceChannel, StreamSink } from '../runtime/instance-channel.js';
import { F, INLINE_BODY_BYTES, type ResponseHead, STREAM_WINDOW } from '../sandbox/channel.js';
import { SlotTable } from '../sandbox/slot-table.js';
import { sendError } from './errors.js';
import { forwardedHeaders, responseHeaders } from './forwarded-headers.js';

export type { ProxyLimits };

/** What one proxied call needs. */
export interface ProxyCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** The channel of the instance leased for this request. */
  channel: InstanceChannel;
  requestId: string;
  /** The path (and query) to send to the function. */
  path: string;
  functionName: string;
  limits: ProxyLimits;
  /** Called when the instance failed (it crashed, or is stuck past the time limit). */
  onInstanceFailure(): void;
  /** Called once the response has ended (or failed): the exchange is over. */
  ended(): void;
}

/** The error for an instance the sandbox stopped for a limit. */
export function limitError(fate: Fate, functionName: string): KylixError {
  // Another request on the same instance ran past its time, and the instance was stopped with it;
  // or the instance's process stopped answering and was ended.
  if (fate.code === 'ERR_TIMEOUT' || fate.code === 'ERR_FUNCTION_CRASHED') {
    const advice =
      fate.code === 'ERR_TIMEOUT'
        ? 'Make it answer sooner or raise the limit; retrying this request may work.'
        : 'Retrying this request may work.';
    return new KylixError(
      'ERR_FUNCTION_CRASHED',
      `${functionName} was stopped while handling this request: ${fate.message}. ${advice}`,
    );
  }
  return new KylixError(
    fate.code,
    fate.code === 'ERR_CPU_LIMIT'
      ? `${functionName} was stopped: ${fate.message}. Make it do less work per request or raise spec.limits.cpuMs.`
      : `${functionName} was stopped: ${fate.message}. Make it use less memory or raise spec.limits.memoryMiB.`,
  );
}

/**
 * Every exchange in flight, checked against its deadline by one shared sweep every SWEEP_MS rather
 * than a timer per request (a limit passes at most SWEEP_MS late). Kept in slots, not a Set: see
 * slot-table.ts.
 */
class Deadlines {
  // Every exchange of the node: ids never leave this process, so 20 slot bits (a million at once).
  private readonly live = new SlotTable<Exchange>(20);
  private timer?: NodeJS.Timeout;

  /** Returns the exchange's id here, for delete(). */
  add(e: Exchange): number {
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
    return this.live.add(e);
  }

  delete(id: number): void {
    this.live.delete(id);
  }

  private sweep(): void {
    if (this.live.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    this.live.forEach((e) => {
      if (now >= e.deadline) e.onTimeout();
    });
  }
}

const SWEEP_MS = 10;
/** Inline response bodies up to this size are written with their head in one write. */
const ONE_WRITE_BYTES = 16 * 1024;
const deadlines = new Deadlines();

/** The exchange a response belongs to, for the one 'close' listener every response shares. */
const EXCHANGE = Symbol('kylix.exchange');
type ExchangeResponse = ServerResponse & { [EXCHANGE]?: Exchange };

/** A response closed: it was sent, or the client went away (a function, not a closure per request). */
function onResponseClose(this: ExchangeResponse): void {
  this[EXCHANGE]?.responseClosed();
}

/** Proxies the call; `call.ended()` is called once the response has ended (or failed). */
export function proxy(call: ProxyCall): void {
  const exchange = new Exchange(call);
  try {
    exchange.start();
  } catch (err) {
    // The instance's channel holds 2^14 streams at once (slot-table.ts): past that, refused.
    if (!(err instanceof RangeError)) throw err;
    call.req.resume();
    sendError(
      call.res,
      new KylixError('ERR_OVERLOADED', `${call.functionName} has too many requests in flight; try again.`),
      call.requestId,
      { 'retry-after': '1' },
    );
    call.ended();
  }
}

/** One request on its way through the channel and its answer on the way back. */
class Exchange implements StreamSink {
  private stream = 0;
  private done = false;
  private responded = false;
  /** When the wall-time limit passes (performance.now() ms); the shared sweep checks it. */
  deadline = 0;
  /** Its id in the shared deadline sweep. */
  private deadlineId = 0;
  /**
   * Request body bytes the instance will take now: none until its function asks for the body (the
   * instance then grants the first window), so a body nobody reads costs the instance nothing.
   */
  private allowance = 0;
  /** The body goes as BODY frames under the instance's credit (not inline, once all here). */
  private streamed = false;
  private received = 0;
  /** Response body bytes written to the client but not yet credited back to the instance. */
  private unacked = 0;
  private waitingDrain = false;
  /** The whole request has reached the instance: from then on, not answering is the function's doing. */
  private delivered = false;

  constructor(private readonly call: ProxyCall) {}

  start(): void {
    const { req, res, channel, limits } = this.call;
    this.stream = channel.open(this);
    this.deadline = performance.now() + limits.timeoutMs;
    this.deadlineId = deadlines.add(this);
    // 'close' comes once the response is sent (after 'finish'), or when the client goes away.
    (res as ExchangeResponse)[EXCHANGE] = this;
    res.on('close', onResponseClose);
    const host = req.headers.host ?? '';
    const head = {
      m: req.method ?? 'GET',
      u: this.call.path,
      h: forwardedHeaders(req.rawHeaders, host),
      host,
      id: this.call.requestId,
    };
    const length = req.headers['content-length'];
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    if (!hasBody) {
      req.resume();
      channel.sendHead(F.REQUEST, this.stream, head);
      this.delivered = true;
      return;
    }
    if (req.headers['transfer-encoding'] === undefined && Number(length) <= INLINE_BODY_BYTES) {
      // A small body of known length travels inline, with the head, once it is all here.
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        if (this.count(chunk)) chunks.push(chunk);
      });
      req.once('end', () => {
        if (this.done) return;
        channel.sendHead(F.REQUEST, this.stream, head, Buffer.concat(chunks));
        this.delivered = true;
      });
      return;
    }
    channel.sendHead(F.REQUEST_HEAD, this.stream, head);
    this.streamed = true;
    req.on('data', (chunk: Buffer) => {
      if (!this.count(chunk)) return;
      channel.send(F.BODY, this.stream, chunk);
      this.allowance -= chunk.byteLength;
      if (this.allowance <= 0) req.pause();
    });
    // Flowing once the instance grants credit (credit() resumes it).
    req.pause();
    req.once('end', () => {
      if (this.done) return;
      channel.send(F.END, this.stream);
      this.delivered = true;
    });
  }

  /** Counts request body bytes against the limit; false (and a 413) once over it. */
  private count(chunk: Buffer): boolean {
    if (this.done) return false;
    this.received += chunk.byteLength;
    if (this.received <= this.call.limits.maxRequestBytes) return true;
    this.call.req.resume();
    this.fail(
      new KylixError(
        'ERR_BODY_TOO_LARGE',
        `The request body is over ${this.call.limits.maxRequestBytes} bytes, the limit of ${this.call.functionName} (spec.limits.maxRequestBytes).`,
      ),
    );
    return false;
  }

  /** The response closed: sent, or the client went away (the call inside the function is then cancelled: request.signal aborts there). */
  responseClosed(): void {
    if (!this.call.res.writableFinished) this.call.channel.abort(this.stream);
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    // The rest of a body nobody will read now (answered early, or failed) is read and dropped, so
    // the connection can carry the client's next request, as Node does for a body no handler read;
    // paused, it would hold the connection until its timeout.
    if (!this.call.req.complete) this.call.req.resume();
    deadlines.delete(this.deadlineId);
    this.call.channel.done(this.stream);
    (this.call.res as ExchangeResponse)[EXCHANGE] = undefined;
    this.call.ended();
  }

  /** Answers with a platform error (or cuts the stream, once the answer has started). */
  private fail(err: KylixError): void {
    if (this.done) return;
    this.call.channel.abort(this.stream);
    sendError(this.call.res, err, this.call.requestId);
    this.finish();
  }

  /** The wall-time limit passed (called by the shared sweep). */
  onTimeout(): void {
    if (this.done) return;
    if (this.responded) {
      // Answering already: the stream is cut, and the instance keeps serving others.
      this.call.channel.abort(this.stream);
      this.call.res.destroy();
      this.finish();
      return;
    }
    // A handler that had the whole request and has not answered in time may be stuck: its instance
    // is stopped. A client still sending its body is not the instance's fault: it keeps serving,
    // and the client gets 408. A body held back because the instance took no more of it (its
    // function did not ask for it, or does not read it) is the function's doing.
    if (!this.delivered && !(this.streamed && this.allowance <= 0)) {
      this.fail(
        new KylixError(
          'ERR_REQUEST_TIMEOUT',
          `The request body did not arrive within ${this.call.limits.timeoutMs} ms (the time limit of ${this.call.functionName}, spec.limits.timeoutMs). Send it faster.`,
        ),
      );
      return;
    }
    // The other requests on the instance end with it: they are told why, not that it crashed.
    this.call.channel.setFate({
      code: 'ERR_TIMEOUT',
      message: `another request to its instance did not answer within ${this.call.limits.timeoutMs} ms (spec.limits.timeoutMs), and the instance was stopped`,
    });
    const waiting = this.call.channel.waitingOn();
    this.call.onInstanceFailure();
    this.fail(
      new KylixError(
        'ERR_TIMEOUT',
        `${this.call.functionName} did not answer within ${this.call.limits.timeoutMs} ms (spec.limits.timeoutMs). ${
          waiting
            ? `Its instance was waiting on a binding call, ${waiting}: its backend may be slow or unreachable (the node's log says when one is down).`
            : 'Make it answer sooner or raise the limit.'
        }`,
      ),
    );
  }

  response(head: ResponseHead, body: Uint8Array | undefined): void {
    if (this.done) return;
    if (this.responded) {
      // A second answer to one request is not the protocol (the channel has forgotten the stream
      // if it was a whole one): the response is cut rather than left open until the time limit.
      this.reset();
      return;
    }
    // 1xx answers are the gateway's own connection business; a function answers 200-599.
    if (!Number.isInteger(head.s) || head.s < 200 || head.s > 599 || (head.t?.length ?? 0) > 1024) {
      this.threw();
      return;
    }
    this.responded = true;
    const { res, requestId } = this.call;
    const isHead = this.call.req.method === 'HEAD';
    try {
      // 204 and 304 carry no body and, by RFC 9110, no Content-Length of one either.
      const length = body && !isHead && head.s !== 204 && head.s !== 304 ? body.byteLength : undefined;
      res.writeHead(head.s, head.t, responseHeaders(head, requestId, length, isHead));
    } catch {
      // A status or header Node refuses: the function's answer cannot be sent as it is.
      this.responded = false;
      this.fail(
        new KylixError(
          'ERR_FUNCTION_THREW',
          `${this.call.functionName} answered with a status or header that is not valid HTTP. Its log may say more: kylix logs ${this.call.functionName}`,
        ),
      );
      return;
    }
    // The exchange finishes when the response's 'close' comes, once it is all sent.
    if (!body) return;
    if (isHead) res.end();
    // As a latin1 string (byte for byte the same), a small body leaves with the response head in
    // one write; as bytes, Node writes the two apart.
    else if (body.byteLength <= ONE_WRITE_BYTES)
      res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1'), 'latin1');
    else res.end(body);
  }

  body(chunk: Uint8Array): void {
    if (this.done) return;
    const { res } = this.call;
    if (res.write(chunk)) {
      this.call.channel.grant(this.stream, chunk.byteLength);
      return;
    }
    this.unacked += chunk.byteLength;
    if (this.waitingDrain) return;
    this.waitingDrain = true;
    res.once('drain', () => {
      this.waitingDrain = false;
      const n = this.unacked;
      this.unacked = 0;
      if (!this.done) this.call.channel.grant(this.stream, n);
    });
  }

  end(): void {
    if (this.done) return;
    // Finished by the response's 'close', as for an inline body.
    this.call.res.end();
  }

  threw(): void {
    this.fail(
      new KylixError(
        'ERR_FUNCTION_THREW',
        `${this.call.functionName} threw an uncaught exception. Its log has the stack trace: kylix logs ${this.call.functionName}`,
      ),
    );
  }

  reset(): void {
    if (this.done) return;
    this.call.res.destroy();
    this.finish();
  }

  credit(bytes: number): void {
    // An instance gives back what it has read, never more than the window: a larger grant would
    // make the gateway queue the client's upload in its own memory.
    this.allowance = Math.min(STREAM_WINDOW, this.allowance + bytes);
    if (this.allowance > 0 && this.call.req.isPaused()) this.call.req.resume();
  }

  closed(): void {
    if (this.done) return;
    this.call.onInstanceFailure();
    if (this.responded) {
      this.call.res.destroy();
      this.finish();
      return;
    }
    // The sandbox may have stopped the instance for a limit; its message races the channel's end.
    void this.call.channel.fate().then((fate) => {
      this.fail(
        fate
          ? limitError(fate, this.call.functionName)
          : new KylixError(
              'ERR_FUNCTION_CRASHED',
              `${this.call.functionName} crashed while handling the request. Its log may say why: kylix logs ${this.call.functionName}`,
            ),
      );
    });
  }
}
