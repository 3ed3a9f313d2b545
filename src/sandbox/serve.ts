/**
 * The instance's end of its channel (see channel.ts): turns the gateway's framed requests and
 * events into calls of the module's fetch(), queue() and scheduled(), streams the answers back
 * under the peer's credit, and carries binding calls out and their results in. One object per
 * instance; the socket it writes to is created by instance.ts from the fd the supervisor gave it.
 */
import { Buffer } from 'node:buffer';
import { bindingError, type WireError } from './binding-result.js';
import { Call, FetchContext } from './call.js';
import {
  creditFrame,
  creditOf,
  type EventHead,
  F,
  frame,
  HEADER_BYTES,
  headFrame,
  INLINE_BODY_BYTES,
  MAX_FRAME_BYTES,
  parseHead,
  type RequestHead,
  STREAM_WINDOW,
  withHeader,
} from './channel.js';
import type { Handler } from './handler.js';
import { decodePayload, encodeFrame } from './rpc-codec.js';
import { runEvent } from './run-event.js';
import { SlotIndex, SlotTable } from './slot-table.js';
import { flatHeaders, isResponse, lightRequest, responseParts, simpleResponseOf } from './web-objects.js';

/** What the server needs from the instance around it. */
export interface ServeHooks {
  /** Writes frames to the channel (batched by the caller per tick). */
  write(bytes: Uint8Array): void;
  /** Runs `fn` (and what it schedules) with console output tagged with the request id. */
  run<T>(requestId: string, fn: () => T): T;
  /** Logs an error of the platform's own making to the function's log. */
  logError(...args: unknown[]): void;
  /** CPU accounting: a call starts (returns its slot) and ends. */
  begin(): number;
  end(slot: number): void;
}

/** The longest status text a response may carry. */
const MAX_STATUS_TEXT = 1024;
/** The largest header block a response may carry (names and values). */
const MAX_HEADER_BYTES = 64 * 1024;
const BODY_CHUNK = 64 * 1024;

/** See the file comment. */
export class InstanceServer {
  // Slots, not Maps, for everything in flight: see slot-table.ts.
  /** Calls by the stream id the gateway gave them. */
  private readonly calls = new SlotIndex<Call>();
  /** Events (queue batches, scheduled ticks) being handled, by stream id. */
  private readonly events = new SlotIndex<{ aborted: boolean }>();
  /** Binding calls waiting for their results, by the id this side gave them. */
  private readonly rpcs = new SlotTable<{ resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(
    private readonly handler: Handler,
    private readonly env: Record<string, unknown>,
    private readonly hooks: ServeHooks,
  ) {}

  /** A binding call: checked and run by the supervisor, for this channel's revision only. */
  rpc(binding: string, op: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const out = encodeFrame(HEADER_BYTES, { binding, op, args });
      this.hooks.write(withHeader(out, F.RPC, this.rpcs.add({ resolve, reject })));
    });
  }

  /** Handles one frame from the supervisor. */
  onFrame(type: number, stream: number, payload: Uint8Array): void {
    switch (type) {
      case F.REQUEST:
      case F.REQUEST_HEAD: {
        const { head, body } = parseHead<RequestHead>(payload);
        // Copied into plain Uint8Arrays: the function never holds a Node Buffer or the socket's memory.
        void this.serveRequest(stream, head, type === F.REQUEST ? new Uint8Array(body) : undefined);
        return;
      }
      case F.BODY: {
        this.calls.get(stream)?.receive(new Uint8Array(payload));
        return;
      }
      case F.END: {
        this.calls.get(stream)?.endBody();
        return;
      }
      case F.ABORT: {
        const call = this.calls.get(stream);
        if (!call) {
          // An event the supervisor gave up on (its time limit): its answer must not go out later,
          // when the stream id may name another request.
          const event = this.events.get(stream);
          if (event) event.aborted = true;
          this.events.delete(stream);
          return;
        }
        call.aborted = true;
        call.aborter?.abort(new DOMException('The client disconnected.', 'AbortError'));
        this.forget(call);
        return;
      }
      case F.CREDIT: {
        const call = this.calls.get(stream);
        if (!call) return;
        call.credit += creditOf(payload);
        call.wake?.();
        return;
      }
      case F.EVENT: {
        // The event's payload is its head (a queue batch of up to 16 MiB of bodies, base64): it
        // comes only from the supervisor, within the frame's own limit.
        const { head } = parseHead<EventHead>(payload, MAX_FRAME_BYTES);
        void this.serveEvent(stream, head);
        return;
      }
      case F.RPC_RESULT: {
        const waiting = this.rpcs.delete(stream);
        const result = decodePayload(payload, { plainBytes: true }).value as {
          ok: boolean;
          value?: unknown;
          error?: WireError;
        };
        if (result.ok) waiting?.resolve(result.value);
        else waiting?.reject(bindingError(result.error));
        return;
      }
    }
  }

  /**
   * The function asked for the body: the gateway may send its first window (it sends no body byte
   * before, so a body nobody reads costs the instance nothing).
   */
  open(call: Call): void {
    if (!call.done) this.hooks.write(creditFrame(call.stream, STREAM_WINDOW));
  }

  /** Grants back the request body bytes the function has taken. */
  ack(call: Call): void {
    if (call.unacked === 0) return;
    this.hooks.write(creditFrame(call.stream, call.unacked));
    call.unacked = 0;
  }

  /** The call is over as far as the channel goes: no more frames for it are taken. */
  private forget(call: Call): void {
    if (call.done) return;
    call.done = true;
    this.calls.delete(call.stream);
    call.wake?.();
  }

  /** The call is over: forgotten, and its CPU accounting slot given back. */
  private finish(call: Call): void {
    this.forget(call);
    this.hooks.end(call.slot);
  }

  /**
   * 1. Calls fetch() with a light Request, inside the invocation (so console output is tagged).
   * 2. A Response returned at once (no promise) is answered in the same turn, with no awaits;
   *    a promise is answered when it settles.
   */
  private serveRequest(stream: number, head: RequestHead, inline: Uint8Array | undefined): void {
    const call = new Call(this, stream, head.m, inline, this.hooks.begin());
    this.calls.set(stream, call);
    this.hooks.run(head.id, () => {
      const request = lightRequest(head.m, head.host, head.u, head.h, call);
      let out: unknown;
      try {
        const fetch = this.handler.fetch;
        out = fetch
          ? fetch.call(this.handler, request, this.env, new FetchContext(this.hooks.logError))
          : new Response('This function has no fetch() handler.\n', { status: 404 });
      } catch (err) {
        this.hooks.logError('Uncaught exception in fetch():', err);
        this.answer(call, undefined);
        return;
      }
      if (isResponse(out)) {
        this.answer(call, out);
        return;
      }
      Promise.resolve(out).then(
        (response) => this.answer(call, response),
        (err: unknown) => {
          this.hooks.logError('Uncaught exception in fetch():', err);
          this.answer(call, undefined);
        },
      );
    });
  }

  /** Sends what fetch() gave (undefined: it threw, already logged) and ends the call. */
  private answer(call: Call, response: unknown): void {
    if (response !== undefined && !isResponse(response)) {
      this.hooks.logError(
        `fetch() returned ${typeof response === 'object' ? Object.prototype.toString.call(response) : typeof response}, not a Response.`,
      );
      response = undefined;
    }
    if (call.done) {
      // The client went away first: nobody reads this answer. (The body may be the function's own
      // stream, whose cancel() may throw: the call is finished whatever it does.)
      try {
        const body = response ? responseParts(response as Response).body : null;
        body?.cancel().catch(() => undefined);
      } catch {}
      this.finish(call);
      return;
    }
    if (!response) {
      this.hooks.write(frame(F.THREW, call.stream));
      this.finish(call);
      return;
    }
    let streaming: Promise<void> | undefined;
    try {
      streaming = this.writeResponse(call, response as Response, call.method === 'HEAD');
    } catch (err) {
      this.failedToSend(call, err);
    }
    if (!streaming) {
      this.finish(call);
      return;
    }
    streaming.then(
      () => this.finish(call),
      (err: unknown) => {
        this.failedToSend(call, err);
        this.finish(call);
      },
    );
  }

  private failedToSend(call: Call, err: unknown): void {
    this.hooks.logError('Could not send the response:', err);
    if (!call.done) this.hooks.write(frame(F.RESET, call.stream));
  }

  /**
   * Sends the response: inline when small and already in memory (at once: undefined), else its
   * head now and its body streamed under credit (the promise settles when the body has gone).
   */
  private writeResponse(call: Call, response: Response, head: boolean): Promise<void> | undefined {
    const stream = call.stream;
    const simple = simpleResponseOf(response);
    if (simple) {
      const responseHead = { s: simple.status, t: simple.statusText || undefined, h: simple.headers };
      if (!this.headFits(stream, responseHead)) return undefined;
      const body = simple.body;
      const bytes = head || body === null ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
      if (!bytes || bytes.byteLength <= INLINE_BODY_BYTES) {
        this.hooks.write(headFrame(F.RESPONSE, stream, responseHead, bytes));
        return undefined;
      }
    }
    const parts = responseParts(response);
    const responseHead = { s: parts.status, t: parts.statusText || undefined, h: flatHeaders(parts.headers) };
    if (!this.headFits(stream, responseHead)) {
      parts.body?.cancel().catch(() => undefined);
      return undefined;
    }
    if (head || !parts.body) {
      this.hooks.write(headFrame(F.RESPONSE, stream, responseHead));
      parts.body?.cancel().catch(() => undefined);
      return undefined;
    }
    this.hooks.write(headFrame(F.RESPONSE_HEAD, stream, responseHead));
    return this.streamBody(call, parts.body);
  }

  /** Streams a response body under the gateway's credit. */
  private async streamBody(call: Call, body: ReadableStream<Uint8Array>): Promise<void> {
    const stream = call.stream;
    const reader = body.getReader();
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) break;
        let chunk: Uint8Array = next.value;
        if (!(chunk instanceof Uint8Array)) throw new TypeError('a response body chunk is not a Uint8Array');
        while (chunk.byteLength > 0) {
          while (call.credit <= 0 && !call.done) await new Promise<void>((r) => (call.wake = r));
          if (call.done) {
            await reader
              .cancel(new DOMException('The client disconnected.', 'AbortError'))
              .catch(() => undefined);
            return;
          }
          const n = Math.min(chunk.byteLength, call.credit, BODY_CHUNK);
          this.hooks.write(frame(F.BODY, stream, chunk.subarray(0, n)));
          call.credit -= n;
          chunk = chunk.subarray(n);
        }
      }
      // Nothing more for a call the gateway ended (ABORT): its stream id may name another request by now.
      if (!call.done) this.hooks.write(frame(F.END, stream));
    } catch (err) {
      this.hooks.logError('The response body failed:', err);
      if (!call.done) this.hooks.write(frame(F.RESET, stream));
    }
  }

  /**
   * Whether a response head is one the gateway can send: a status of 200-599 (1xx answers belong to
   * the gateway's own connection handling, never to a function) and a status text and header block
   * within limits. If not, the function threw as far as the client is concerned (502).
   */
  private headFits(stream: number, head: { s: number; t?: string; h: string[] }): boolean {
    let why: string | undefined;
    if (!Number.isInteger(head.s) || head.s < 200 || head.s > 599) why = `status ${head.s} is not 200-599`;
    else if ((head.t?.length ?? 0) > MAX_STATUS_TEXT)
      why = `its status text is over ${MAX_STATUS_TEXT} characters`;
    else {
      let bytes = 0;
      for (const part of head.h) bytes += part.length + 4;
      if (bytes > MAX_HEADER_BYTES) why = `its headers are over ${MAX_HEADER_BYTES} bytes`;
    }
    if (!why) return true;
    this.hooks.logError(`The response cannot be sent: ${why}.`);
    this.hooks.write(frame(F.THREW, stream));
    return false;
  }

  /**
   * Runs queue(batch) or scheduled(event) for the supervisor (only the supervisor frames events)
   * and answers with what the handler decided, after its waitUntil work.
   */
  private async serveEvent(stream: number, event: EventHead): Promise<void> {
    const slot = this.hooks.begin();
    const state = { aborted: false };
    this.events.set(stream, state);
    try {
      const result = await this.hooks.run(event.id, () =>
        runEvent(this.handler, this.env, this.hooks.logError, event),
      );
      if (!state.aborted)
        this.hooks.write(
          headFrame(F.RESPONSE, stream, { s: 200, h: [] }, new TextEncoder().encode(JSON.stringify(result))),
        );
    } catch (err) {
      this.hooks.logError('Could not deliver the event:', err);
      if (!state.aborted) this.hooks.write(frame(F.THREW, stream));
    } finally {
      this.events.delete(stream);
      this.hooks.end(slot);
    }
  }
}
