/**
 * The supervisor's end of one instance's channel (the wire format is in sandbox/channel.ts). The
 * channel is the capability: it was made for one instance of one revision, and every binding call
 * that arrives on it acts for that revision — whatever the frames say. Anything
 * malformed (an unknown frame, a bad payload, body bytes past the credit granted) means the
 * sandbox process is broken or hostile, and `onBroken` ends it. The binding calls that arrive on
 * it are admitted and answered in binding-calls.ts.
 */
import type { Socket } from 'node:net';
import {
  creditFrame,
  creditOf,
  F,
  FrameReader,
  FrameWriter,
  frame,
  headFrame,
  parseHead,
  type ResponseHead,
  STREAM_WINDOW,
} from '../sandbox/channel.js';
import type { BindingCall, LimitCode, LogRecord } from '../sandbox/protocol.js';
import { SlotTable } from '../sandbox/slot-table.js';
import { BindingCalls } from './binding-calls.js';

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
 * Bytes written to the instance and not yet taken by its socket past which the channel stops
 * reading the instance's frames until they drain (Node's own pipe() does the same). What the
 * supervisor queues for an instance is mostly what the instance asked for (binding results, the
 * credit its response bodies earn), so an instance that does not read its channel must not be able
 * to make it queue more by sending more.
 */
const PAUSE_READING_BYTES = 256 * 1024;
interface OpenStream {
  sink: StreamSink;
  /** Response body bytes the instance may still send before we grant more. */
  allowance: number;
  /** Its response head has come: body bytes and an end may follow (not before). */
  answered?: boolean;
}

/** See the file comment. */
export class InstanceChannel {
  /** Open streams by id (slots, not a Map: see slot-table.ts). */
  private readonly streams = new SlotTable<OpenStream>();
  /** The binding calls that arrive on it (binding-calls.ts). */
  private readonly calls: BindingCalls;
  private readonly writer: FrameWriter;
  /** True while reading is paused for what is queued to the instance (PAUSE_READING_BYTES). */
  private readingPaused = false;
  private closedFlag = false;
  private fateValue?: Fate;
  private readonly fateWaiters: ((f: Fate) => void)[] = [];

  constructor(
    private readonly socket: Socket,
    hooks: InstanceHooks,
    private readonly onBroken: (reason: string) => void,
    /** The namespace of the instance's revision, whose share of the node's budget its calls take. */
    namespace = '',
  ) {
    this.calls = new BindingCalls(
      hooks,
      (bytes) => this.write(bytes),
      () => this.socket.writableLength,
      namespace,
    );
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

  /**
   * Opens a stream: frames for it go to `sink`. Returns its id. `allowance` is the answer's first
   * credit: every body byte the instance sends on it, inline with the head or not, takes from it.
   */
  open(sink: StreamSink, allowance = STREAM_WINDOW): number {
    const id = this.streams.add({ sink, allowance });
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

  /** The oldest binding call of the instance still running (binding-calls.ts), for a timeout's message. */
  waitingOn(): string | undefined {
    return this.calls.waitingOn();
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
        const s = this.streams.get(id);
        if (!s) return;
        if (type === F.RESPONSE_HEAD) {
          s.answered = true;
          s.sink.response(head, undefined);
          return;
        }
        // A body inline with its head is body bytes like any other: within the credit, or the
        // supervisor would hold (and the gateway queue for a slow client) whatever one frame carries.
        if (body.byteLength > s.allowance) {
          this.broken('response body bytes past the credit granted (inline with the head)');
          return;
        }
        this.finish(id);
        s.sink.response(head, body);
        return;
      }
      case F.BODY: {
        const s = this.streams.get(id);
        if (!s) return;
        // Before its head, the gateway would have to make up a status for them (Node's implicit 200).
        if (!s.answered) {
          this.broken('response body bytes before the response head');
          return;
        }
        s.allowance -= payload.byteLength;
        if (s.allowance < 0) {
          this.broken('response body bytes past the credit granted');
          return;
        }
        s.sink.body(new Uint8Array(payload));
        return;
      }
      case F.END: {
        const s = this.streams.get(id);
        if (!s) return;
        if (!s.answered) {
          this.broken('a response end before the response head');
          return;
        }
        this.finish(id);
        s.sink.end();
        return;
      }
      case F.THREW:
        this.finish(id)?.sink.threw();
        return;
      case F.RESET:
        this.finish(id)?.sink.reset();
        return;
      case F.CREDIT:
        this.streams.get(id)?.sink.credit(creditOf(payload));
        return;
      case F.RPC:
        this.calls.onCall(id, payload);
        return;
      default:
        throw new Error(`an unknown frame type ${type}`);
    }
  }
}
