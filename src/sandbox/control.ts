/**
 * The control channel between the supervisor and one sandbox process (start, stop, warm, budget one
 * way; hello, ready, failed, limit, exited, log the other: protocol.ts). It is a socketpair the
 * supervisor makes at spawn, the process's fd 3, carrying one JSON message per frame (channel.ts).
 *
 * It is not Node's IPC channel: Node's reader buffers whatever length a message announces, so a
 * compromised sandbox process could make the supervisor hold gigabytes for one message. Here the
 * reading side sets the largest frame it takes; a bigger one, a frame of another type, or a payload
 * that is not JSON ends the channel, and the supervisor then ends the process.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { F, FrameReader, FrameWriter, frame } from './channel.js';

/** The sandbox process's fd of its control channel (0–2 are stdio; instance channels follow). */
export const CONTROL_FD = 3;

/**
 * The largest control message the supervisor reads from a sandbox process. What an honest one sends
 * is far smaller: a log record holds at most 16 Ki characters, and longer texts are cut before
 * sending (see fitControlText).
 */
export const MAX_CONTROL_FROM_SANDBOX = 256 * 1024;

/** Characters of any one text a sandbox process puts in a control message. */
export const MAX_CONTROL_TEXT = 32 * 1024;

/** A text cut to MAX_CONTROL_TEXT characters, saying how much was cut. */
export function fitControlText(text: string): string {
  return text.length > MAX_CONTROL_TEXT
    ? `${text.slice(0, MAX_CONTROL_TEXT)}… (${text.length - MAX_CONTROL_TEXT} more characters)`
    : text;
}

/** How much one side reads per second at most; past it, it stops reading until the second is over. */
export interface ControlBudget {
  messages: number;
  bytes: number;
}

/**
 * The supervisor's budget per sandbox process. An honest one sends at most 1,000 log records a
 * second per instance (its host drops the rest and says how many), and a handful of others; a
 * flood of well-formed messages past this is not dropped but waits in the sandbox's own socket
 * buffer, so it costs the supervisor a bounded share of its thread.
 */
export const SANDBOX_CONTROL_BUDGET: ControlBudget = { messages: 10_000, bytes: 8 * 2 ** 20 };

/** One end of a control channel: sends `Out` messages, hands each `In` message to `onMessage`. */
export class ControlChannel<In, Out> {
  private readonly writer: FrameWriter;
  private windowStart = 0;
  private messages = 0;
  private bytes = 0;

  /**
   * `onMessage` gets each message parsed but unchecked (the supervisor checks what it reads);
   * `onBroken` is told once why the peer cannot be read any more (the socket is then destroyed).
   */
  constructor(
    private readonly socket: Socket,
    onMessage: (message: In) => void,
    onBroken: (reason: string) => void,
    maxPayload?: number,
    budget?: ControlBudget,
  ) {
    this.writer = new FrameWriter(socket);
    const reader = new FrameReader((type, _stream, payload) => {
      if (type !== F.CONTROL) throw new Error(`a frame of type ${type} on the control channel`);
      this.messages++;
      this.bytes += payload.byteLength;
      onMessage(
        JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')),
      );
    }, maxPayload);
    socket.on('data', (chunk: Uint8Array) => {
      if (socket.destroyed) return;
      const now = performance.now();
      if (now - this.windowStart >= 1000) {
        this.windowStart = now;
        this.messages = 0;
        this.bytes = 0;
      }
      try {
        reader.push(chunk);
      } catch (err) {
        socket.destroy();
        onBroken(`a malformed control message (${err instanceof Error ? err.message : 'not JSON'})`);
        return;
      }
      if (budget && (this.messages > budget.messages || this.bytes > budget.bytes)) {
        // Read again when this second is over: the rest waits in the peer's socket buffer.
        socket.pause();
        setTimeout(
          () => {
            if (!socket.destroyed) socket.resume();
          },
          Math.max(1, 1000 - (performance.now() - this.windowStart)),
        ).unref();
      }
    });
    socket.on('error', () => undefined);
  }

  /** True until either side closed the channel. */
  get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** Sends a message; false (and nothing sent) when the channel is closed. */
  send(message: Out): boolean {
    if (!this.open) return false;
    this.writer.write(frame(F.CONTROL, 0, Buffer.from(JSON.stringify(message))));
    return true;
  }

  /** Calls `listener` once when the channel closes (the peer went away, or it broke). */
  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }
}
