/**
 * One call in flight on an instance (serve.ts keeps them by stream id): the request's abort signal
 * and body as its light Request asks for them, the response's credit, and the ctx of fetch().
 */
import { STREAM_WINDOW } from './channel.js';
import type { ExecutionContext } from './handler.js';
import type { RequestSource } from './web-objects.js';

const NO_BODY_METHODS = new Set(['GET', 'HEAD']);

/**
 * A call in flight on this instance, by stream id. It is also what the call's light Request asks
 * for its signal and body (RequestSource), so a request costs no closures.
 */
export class Call implements RequestSource {
  /** Made when the function first asks for request.signal; `aborted` holds until then. */
  aborter?: AbortController;
  aborted = false;
  /** The request body's stream controller, while the body is still arriving. */
  bodyController?: ReadableStreamDefaultController<Uint8Array>;
  /**
   * Body chunks that arrived before the body stream was made. The gateway sends none before the
   * instance grants the first window (when the function asks for the body), so this holds only
   * what a chunk and the stream's making raced for.
   */
  private early?: Uint8Array[];
  /** The body has ended (END arrived) or its reader cancelled it: later chunks are dropped. */
  private bodyOver = false;
  /** Bytes of request body received but not yet credited back. */
  unacked = 0;
  /** Response body bytes the gateway allows us to send now. */
  credit = STREAM_WINDOW;
  /** Wakes the response writer when credit arrives or the call ends. */
  wake?: () => void;
  done = false;

  constructor(
    private readonly server: { ack(call: Call): void; open(call: Call): void },
    readonly stream: number,
    readonly method: string,
    /** The whole body, when it came inline in the request frame. */
    private readonly inline: Uint8Array | undefined,
    /** The call's CPU accounting slot. */
    readonly slot: number,
  ) {}

  signal(): AbortSignal {
    if (!this.aborter) {
      this.aborter = new AbortController();
      if (this.aborted) this.aborter.abort(new DOMException('The client disconnected.', 'AbortError'));
    }
    return this.aborter.signal;
  }

  /** A BODY frame's bytes: into the body stream, or kept until the function asks for the body. */
  receive(chunk: Uint8Array): void {
    if (this.bodyOver) return;
    this.unacked += chunk.byteLength;
    const c = this.bodyController;
    if (!c) {
      if (this.early) this.early.push(chunk);
      else this.early = [chunk];
      return;
    }
    c.enqueue(chunk);
    if ((c.desiredSize ?? 0) > 0) this.server.ack(this);
  }

  /** The END frame: the body is complete. */
  endBody(): void {
    this.bodyOver = true;
    this.bodyController?.close();
    this.bodyController = undefined;
  }

  body(): ReadableStream<Uint8Array> | undefined {
    if (NO_BODY_METHODS.has(this.method)) return undefined;
    const bytes = this.inline;
    if (bytes) {
      return new ReadableStream<Uint8Array>({
        start(c) {
          if (bytes.byteLength > 0) c.enqueue(bytes);
          c.close();
        },
      });
    }
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          for (const chunk of this.early ?? []) c.enqueue(chunk);
          this.early = undefined;
          if (this.bodyOver) c.close();
          else {
            this.bodyController = c;
            this.server.open(this);
          }
        },
        pull: () => this.server.ack(this),
        cancel: () => {
          this.bodyOver = true;
          this.bodyController = undefined;
        },
      },
      { highWaterMark: STREAM_WINDOW, size: (chunk) => chunk.byteLength },
    );
  }
}

/** The ctx argument of fetch(): waitUntil keeps work alive after the response, as on Workers. */
export class FetchContext implements ExecutionContext {
  // A true private field: the function holds ctx and must not reach the platform's logger through it.
  readonly #logError: (...args: unknown[]) => void;
  constructor(logError: (...args: unknown[]) => void) {
    this.#logError = logError;
  }
  /** An own property, not a method: code that takes it off ctx (`const { waitUntil } = ctx`) still works. */
  readonly waitUntil = (promise: Promise<unknown>): void => {
    Promise.resolve(promise).catch((err) => this.#logError('waitUntil promise rejected:', err));
  };
  passThroughOnException(): void {}
}
