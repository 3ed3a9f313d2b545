/**
 * The supervisor's end of one instance's channel (the wire format is in sandbox/channel.ts). The
 * channel is the capability: it was made for one instance of one revision, and every binding call
 * that arrives on it acts for that revision — whatever the frames say. Anything
 * malformed (an unknown frame, a bad payload, body bytes past the credit granted) means the
 * sandbox process is broken or hostile, and `onBroken` ends it.
 */
import type { Socket } from 'node:net';
import { type BudgetShare, NamespaceBudget } from '../bindings/namespace-budget.js';
import { KylixError } from '../errors.js';
import {
  creditFrame,
  creditOf,
  F,
  FrameReader,
  FrameWriter,
  frame,
  HEADER_BYTES,
  headFrame,
  parseHead,
  type ResponseHead,
  STREAM_WINDOW,
  withHeader,
} from '../sandbox/channel.js';
import type { BindingCall, LimitCode, LogRecord } from '../sandbox/protocol.js';
import { decodePayload, encodeFrame, PayloadTooLarge } from '../sandbox/rpc-codec.js';
import { SlotTable } from '../sandbox/slot-table.js';

/** What the channel does for its instance: both are bound to the instance's revision by the runtime. */
export interface InstanceHooks {
  /** Runs a binding call for the revision (the broker); rejects with a KylixError for the function. */
  rpc(call: BindingCall): Promise<unknown>;
  /** A console record of the instance's code (it arrives on the sandbox process's control channel). */
  log(record: LogRecord): void;
}

/** Receives what the instance answers on one stream. */
export interface StreamSink {
  /** The response head; `body` is the whole body when it came inline, else BODY frames follow. */
  response(head: ResponseHead, body: Uint8Array | undefined): void;
  body(chunk: Uint8Array): void;
  end(): void;
  /** The handler threw, or returned something other than a Response. */
  threw(): void;
  /** The response body failed midway. */
  reset(): void;
  /** The instance may take this many more request body bytes. */
  credit(bytes: number): void;
  /** The channel is gone (the instance stopped or crashed). */
  closed(): void;
}

/** Why the sandbox stopped an instance for a limit. */
export interface Fate {
  /**
   * A limit the sandbox stopped it for; ERR_TIMEOUT: the gateway stopped it for a request past its
   * time; ERR_FUNCTION_CRASHED: the supervisor ended its process (it stopped answering).
   */
  code: LimitCode | 'ERR_TIMEOUT' | 'ERR_FUNCTION_CRASHED';
  message: string;
}

/**
 * Values one binding call may make as it is read (rpc-codec.ts counts them, objects that carry a
 * buffer as four): the broker's budget for its arguments (bindings/call-budget.ts says why) and the
 * call's own few. Past it, the call is refused before its values are made.
 */
const MAX_CALL_VALUES = 1_000_000 + 16;
/**
 * What the calls in flight may hold, on one channel and on the whole node: a call holds its values
 * and its bytes while its provider runs (a slow query, a Redis round trip), so without these a few
 * calls each within MAX_CALL_VALUES, or each a frame of one long string, would fill the supervisor's
 * heap. Values cost tens of bytes each; a payload's bytes count twice (a string of them may be
 * two-byte in memory). About 1.5 GB at most on a node.
 */
const MAX_CHANNEL_HELD: Held = { values: 2 * MAX_CALL_VALUES, bytes: 256 * 2 ** 20 };
/**
 * What the binding calls in flight on this node hold, every channel together: at most 8 M values
 * and 1 GiB, one namespace at most half of each (namespace-budget.ts), so one tenant's calls, over
 * however many functions and instances, leave room for everyone else's.
 */
const nodeValues = new NamespaceBudget(8 * MAX_CALL_VALUES);
const nodeBytes = new NamespaceBudget(2 ** 30);
/**
 * A call this small is never refused for the node's budget (only for its own channel's), so one
 * tenant holding the node's budget with large calls cannot stop every other tenant's binding calls.
 */
const SMALL_CALL: Held = { values: 1024, bytes: 64 * 1024 };
const NOTHING: Held = { values: 0, bytes: 0 };

/** What binding calls in flight hold: values as the reader counts them, and twice their payload bytes. */
interface Held {
  values: number;
  bytes: number;
}

/** Whether `held` plus `call` stays within `max`. */
function fits(held: Held, call: Held, max: Held): boolean {
  return held.values + call.values <= max.values && held.bytes + call.bytes <= max.bytes;
}

/** Adds `call` to `held` (`sign` 1), or takes it back (-1). */
function hold(held: Held, call: Held, sign: 1 | -1): void {
  held.values += sign * call.values;
  held.bytes += sign * call.bytes;
}
/**
 * The largest structured clone a call may be (rpc-codec.ts sends only Maps, Sets, class instances
 * and sparse arrays so): it cannot be counted as it is read, so it is bounded by its bytes.
 */
const MAX_CLONE_BYTES = 2 ** 20;

/** Binding calls one instance may have in flight; past it, calls fail at once. */
const MAX_RPC_IN_FLIGHT = 1024;

/**
 * Bytes written to the instance and not yet taken by its socket past which the channel stops
 * reading the instance's frames until they drain (Node's own pipe() does the same). What the
 * supervisor queues for an instance is mostly what the instance asked for (binding results, the
 * credit its response bodies earn), so an instance that does not read its channel must not be able
 * to make it queue more by sending more.
 */
const PAUSE_READING_BYTES = 256 * 1024;
/**
 * Queued bytes past which a binding result is not sent but refused (ERR_OVERLOADED): the calls read
 * before reading paused (up to MAX_RPC_IN_FLIGHT) could otherwise each queue a result of up to
 * MAX_FRAME_BYTES for an instance that reads none of them.
 */
const MAX_QUEUED_RESULT_BYTES = 16 * 2 ** 20;

interface OpenStream {
  sink: StreamSink;
  /** Response body bytes the instance may still send before we grant more. */
  allowance: number;
}

/** See the file comment. */
export class InstanceChannel {
  /** Open streams by id (slots, not a Map: see slot-table.ts). */
  private readonly streams = new SlotTable<OpenStream>();
  private rpcInFlight = 0;
  /** What the calls in flight on this channel hold (see MAX_CHANNEL_HELD). */
  private readonly held: Held = { values: 0, bytes: 0 };
  /** Its namespace's parts of the node's budgets. */
  private readonly nodeShare: { values: BudgetShare; bytes: BudgetShare };
  private readonly writer: FrameWriter;
  /** True while reading is paused for what is queued to the instance (PAUSE_READING_BYTES). */
  private readingPaused = false;
  private closedFlag = false;
  private fateValue?: Fate;
  private readonly fateWaiters: ((f: Fate) => void)[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly hooks: InstanceHooks,
    private readonly onBroken: (reason: string) => void,
    /** The namespace of the instance's revision, whose share of the node's budget its calls take. */
    namespace = '',
  ) {
    this.nodeShare = { values: nodeValues.of(namespace), bytes: nodeBytes.of(namespace) };
    this.writer = new FrameWriter(socket);
    const reader = new FrameReader((type, stream, payload) => this.onFrame(type, stream, payload));
    socket.on('data', (chunk: Uint8Array) => {
      if (this.closedFlag) return;
      try {
        reader.push(chunk);
      } catch (err) {
        this.broken(`a malformed frame (${(err as Error).message})`);
      }
    });
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
  }

  /** True once the instance's end has closed. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Opens a stream: frames for it go to `sink`. Returns its id. */
  open(sink: StreamSink): number {
    const id = this.streams.add({ sink, allowance: STREAM_WINDOW });
    if (this.closedFlag) queueMicrotask(() => this.finish(id)?.sink.closed());
    return id;
  }

  /** Sends a frame (see FrameWriter: a lone frame at once, the rest of a turn's frames in one write). */
  write(bytes: Uint8Array): void {
    if (this.closedFlag) return;
    this.writer.write(bytes);
    if (!this.readingPaused && this.socket.writableLength > PAUSE_READING_BYTES) {
      this.readingPaused = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.readingPaused = false;
        if (!this.closedFlag) this.socket.resume();
      });
    }
  }

  /** Sends a frame built by `headFrame` / `frame` for stream `id`. */
  send(type: number, id: number, payload?: Uint8Array): void {
    this.write(frame(type, id, payload));
  }

  /** Sends a head frame (REQUEST, REQUEST_HEAD or EVENT). */
  sendHead(type: number, id: number, head: unknown, body?: Uint8Array): void {
    this.write(headFrame(type, id, head, body));
  }

  /** The gateway took `bytes` of response body from the stream: the instance may send that many more. */
  grant(id: number, bytes: number): void {
    const s = this.streams.get(id);
    if (!s || bytes <= 0) return;
    s.allowance += bytes;
    this.write(creditFrame(id, bytes));
  }

  /** Stops a stream: the instance aborts the call (request.signal) and further frames for it are dropped. */
  abort(id: number): void {
    if (this.streams.delete(id)) this.send(F.ABORT, id);
  }

  /** Forgets a finished stream. */
  done(id: number): void {
    this.streams.delete(id);
  }

  /** Records why the sandbox stopped the instance; requests that see the channel close report it. */
  setFate(fate: Fate): void {
    this.fateValue ??= fate;
    for (const w of this.fateWaiters.splice(0)) w(fate);
  }

  /** The limit the instance was stopped for, waiting briefly: that message and the channel's end race. */
  fate(waitMs = 250): Promise<Fate | undefined> {
    if (this.fateValue) return Promise.resolve(this.fateValue);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      this.fateWaiters.push((f) => {
        clearTimeout(timer);
        resolve(f);
      });
    });
  }

  /** Closes the channel: the instance's thread ends when it sees that. */
  close(): void {
    this.socket.destroy();
    this.onClose();
  }

  private finish(id: number): OpenStream | undefined {
    return this.streams.delete(id);
  }

  private onClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const s of this.streams.clear()) s.sink.closed();
  }

  private broken(reason: string): void {
    if (this.closedFlag) return;
    this.onBroken(`its channel carried ${reason}`);
    this.close();
  }

  private onFrame(type: number, id: number, payload: Uint8Array): void {
    switch (type) {
      case F.RESPONSE:
      case F.RESPONSE_HEAD: {
        const { head, body } = parseHead<ResponseHead>(payload);
        if (!Number.isInteger(head.s) || !Array.isArray(head.h)) throw new Error('a bad response head');
        const s = type === F.RESPONSE ? this.finish(id) : this.streams.get(id);
        s?.sink.response(head, type === F.RESPONSE ? body : undefined);
        return;
      }
      case F.BODY: {
        const s = this.streams.get(id);
        if (!s) return;
        s.allowance -= payload.byteLength;
        if (s.allowance < 0) {
          this.broken('response body bytes past the credit granted');
          return;
        }
        s.sink.body(new Uint8Array(payload));
        return;
      }
      case F.END:
        this.finish(id)?.sink.end();
        return;
      case F.THREW:
        this.finish(id)?.sink.threw();
        return;
      case F.RESET:
        this.finish(id)?.sink.reset();
        return;
      case F.CREDIT:
        this.streams.get(id)?.sink.credit(creditOf(payload));
        return;
      case F.RPC: {
        this.onRpc(id, payload);
        return;
      }
      default:
        throw new Error(`an unknown frame type ${type}`);
    }
  }

  private onRpc(id: number, payload: Uint8Array): void {
    let decoded: { value: unknown; values: number };
    try {
      decoded = decodePayload(payload, { maxValues: MAX_CALL_VALUES, maxCloneBytes: MAX_CLONE_BYTES });
    } catch (err) {
      if (!(err instanceof PayloadTooLarge)) throw err;
      this.reply(id, {
        ok: false,
        error: { code: 'ERR_BINDING_TOO_LARGE', message: `A binding call ${err.message}.` },
      });
      return;
    }
    const raw = decoded.value as BindingCall;
    if (
      typeof raw !== 'object' ||
      raw === null ||
      typeof raw.binding !== 'string' ||
      typeof raw.op !== 'string' ||
      !Array.isArray(raw.args)
    )
      throw new Error('a malformed binding call');
    // Only what a call is: anything else it carried is not held while it runs.
    const call: BindingCall = { binding: raw.binding, op: raw.op, args: raw.args };
    const size: Held = { values: decoded.values, bytes: 2 * payload.byteLength };
    if (this.rpcInFlight >= MAX_RPC_IN_FLIGHT) {
      this.reply(id, {
        ok: false,
        error: {
          code: 'ERR_BINDING_BAD_ARGUMENTS',
          message: `more than ${MAX_RPC_IN_FLIGHT} binding calls in flight at once; await some before making more`,
        },
      });
      return;
    }
    const small = fits(NOTHING, size, SMALL_CALL);
    const { values, bytes } = this.nodeShare;
    if (
      !fits(this.held, size, MAX_CHANNEL_HELD) ||
      (!small && !(values.fits(size.values) && bytes.fits(size.bytes)))
    ) {
      this.reply(id, {
        ok: false,
        error: {
          code: 'ERR_OVERLOADED',
          message:
            'The binding calls in flight hold too much already (values or bytes); await some before making more.',
        },
      });
      return;
    }
    this.rpcInFlight++;
    hold(this.held, size, 1);
    values.take(size.values);
    bytes.take(size.bytes);
    const settled = () => {
      this.rpcInFlight--;
      hold(this.held, size, -1);
      values.give(size.values);
      bytes.give(size.bytes);
    };
    // A hook that throws at once settles like one that rejects (and one that answers at once, like
    // one that resolves): what the call held is given back either way.
    let running: Promise<unknown>;
    try {
      running = Promise.resolve(this.hooks.rpc(call));
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (value) => {
        settled();
        this.reply(id, { ok: true, value });
      },
      (err: unknown) => {
        settled();
        this.reply(id, { ok: false, error: wireError(err) });
      },
    );
  }

  /** Sends a binding call's result (RPC_RESULT). */
  private reply(id: number, result: { ok: boolean; value?: unknown; error?: unknown }): void {
    if (result.ok && this.socket.writableLength > MAX_QUEUED_RESULT_BYTES)
      result = {
        ok: false,
        error: {
          code: 'ERR_OVERLOADED',
          message: `The instance has not read binding results of more than ${MAX_QUEUED_RESULT_BYTES / 2 ** 20} MiB yet; await the calls in flight before making more.`,
        },
      };
    let out: Uint8Array;
    try {
      out = encodeFrame(HEADER_BYTES, result);
    } catch (err) {
      out = encodeFrame(HEADER_BYTES, {
        ok: false,
        error:
          err instanceof PayloadTooLarge
            ? { code: 'ERR_BINDING_TOO_LARGE', message: `The result ${err.message}.` }
            : { code: 'ERR_INTERNAL', message: 'the result could not be sent' },
      });
    }
    this.write(withHeader(out, F.RPC_RESULT, id));
  }
}

/** A binding call's failure as the function sees it: code, message, and for SQL the SQLSTATE. */
function wireError(err: unknown): { code?: string; message: string; sqlState?: string } {
  if (err instanceof KylixError) {
    const sqlState = (err as { sqlState?: unknown }).sqlState;
    return {
      code: err.code,
      message: err.message,
      sqlState: typeof sqlState === 'string' ? sqlState : undefined,
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}
