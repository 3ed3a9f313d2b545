/**
 * The wire format of an instance's channel: one stream socket between the supervisor and one
 * instance thread (a socketpair the supervisor made when it spawned the sandbox process, so it has
 * no name anyone else could connect to). Everything about the instance travels on it as frames:
 * requests and events the gateway framed, response heads and bodies, and binding calls and their
 * results. (Log records go over the sandbox process's control channel: a thread stuck in a loop can
 * still post them.) The supervisor binds the channel to one revision when it hands it out,
 * so the channel itself is the capability: no frame names whom it acts for.
 *
 * A frame is a 9-byte header — payload length (u32), type (u8), stream id (u32) — and the payload.
 * Bodies larger than one frame go as chunks under credit-based flow control: a sender may have at
 * most the credit its peer granted in flight, and the peer grants more as its reader consumes.
 * Shared by both sides (both are Node: the supervisor and the sandbox process's host code).
 */

import { Buffer } from 'node:buffer';
import { setImmediate } from 'node:timers';

/** Frame types. Supervisor → instance: REQUEST…ABORT; instance → supervisor: RESPONSE…LOG; CREDIT both ways. */
export const F = {
  /** A request with its whole body inline: head JSON, then body bytes. */
  REQUEST: 1,
  /** A request head whose body follows as BODY frames and an END frame. */
  REQUEST_HEAD: 2,
  /** A chunk of a body (request or response, by direction). */
  BODY: 3,
  /** The end of a body. */
  END: 4,
  /** The client went away or a limit passed: stop the call (request.signal aborts). */
  ABORT: 5,
  /** An event (queue batch, scheduled tick) for queue() / scheduled(): kind and payload JSON. */
  EVENT: 6,
  /** The answer to a binding call: `{ ok, value | error }` (rpc-codec.ts). */
  RPC_RESULT: 7,
  /** More body bytes the sender may send on this stream (u32 payload). */
  CREDIT: 8,
  /** A response with its whole body inline: head JSON, then body bytes. */
  RESPONSE: 20,
  /** A response head whose body follows as BODY frames and an END frame. */
  RESPONSE_HEAD: 21,
  /** The handler threw (or did not return a Response) before answering: the gateway maps it to 502. */
  THREW: 22,
  /** The response body failed midway: the gateway cuts the client's stream. */
  RESET: 23,
  /** A binding call: `{ binding, op, args }` (rpc-codec.ts); the stream id is the call id. */
  RPC: 24,
  /** A control message as JSON, on a sandbox process's control channel only (control.ts). */
  CONTROL: 30,
} as const;

/** Bytes of a frame header. */
export const HEADER_BYTES = 9;
/** The largest payload a frame may carry; a peer that sends more is broken or hostile. */
export const MAX_FRAME_BYTES = 64 * 2 ** 20;
/**
 * The largest head (request or response line and headers, as JSON) a frame may carry. The gateway
 * accepts 32 KiB of request headers and an instance sends at most 64 KiB of response headers, so a
 * bigger head is a broken or hostile peer.
 */
export const MAX_HEAD_BYTES = 256 * 1024;
/** Bodies up to this size travel inline in the REQUEST/RESPONSE frame. */
export const INLINE_BODY_BYTES = 64 * 1024;
/** The credit a body stream starts with, and the most a receiver keeps granted ahead. */
export const STREAM_WINDOW = 256 * 1024;

/** The head of a request frame. `h` is a flat [name, value, …] list; `id` the gateway's request id. */
export interface RequestHead {
  m: string;
  u: string;
  h: string[];
  /** The host the gateway routed by: the one the function's request.url names. */
  host: string;
  id: string;
}

/** The head of a response frame. */
export interface ResponseHead {
  s: number;
  t?: string;
  h: string[];
}

/** An event frame's content. */
export interface EventHead {
  kind: 'queue' | 'scheduled';
  id: string;
  payload: unknown;
}

const decoder = new TextDecoder();

/** A frame header for `payloadBytes` of payload. */
export function frameHeader(type: number, stream: number, payloadBytes: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, payloadBytes);
  view.setUint8(4, type);
  view.setUint32(5, stream);
  return header;
}

/** One whole frame: header and payload in one buffer. */
export function frame(type: number, stream: number, payload?: Uint8Array): Uint8Array {
  const length = payload?.byteLength ?? 0;
  const out = new Uint8Array(HEADER_BYTES + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length);
  view.setUint8(4, type);
  view.setUint32(5, stream);
  if (payload) out.set(payload, HEADER_BYTES);
  return out;
}

/** Fills the header of a frame built with room for it (`HEADER_BYTES`, then the payload). */
export function withHeader(out: Uint8Array, type: number, stream: number): Uint8Array {
  const view = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  view.setUint32(0, out.byteLength - HEADER_BYTES);
  view.setUint8(4, type);
  view.setUint32(5, stream);
  return out;
}

/** A frame whose payload is a JSON head followed by body bytes: [u32 head length][head][body]. */
export function headFrame(type: number, stream: number, head: unknown, body?: Uint8Array): Uint8Array {
  const json = JSON.stringify(head);
  const jsonBytes = Buffer.byteLength(json);
  const bodyBytes = body?.byteLength ?? 0;
  const out = Buffer.allocUnsafe(HEADER_BYTES + 4 + jsonBytes + bodyBytes);
  out.writeUInt32BE(4 + jsonBytes + bodyBytes, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32BE(stream, 5);
  out.writeUInt32BE(jsonBytes, HEADER_BYTES);
  out.write(json, HEADER_BYTES + 4, 'utf8');
  if (body) out.set(body, HEADER_BYTES + 4 + jsonBytes);
  return out;
}

/** A CREDIT frame granting `bytes`. */
export function creditFrame(stream: number, bytes: number): Uint8Array {
  const out = frame(F.CREDIT, stream, new Uint8Array(4));
  new DataView(out.buffer).setUint32(HEADER_BYTES, bytes);
  return out;
}

/** Splits a head frame's payload into its parsed head and its body bytes; throws on a malformed one. */
export function parseHead<T>(
  payload: Uint8Array,
  maxHeadBytes = MAX_HEAD_BYTES,
): { head: T; body: Uint8Array } {
  if (payload.byteLength < 4) throw new Error('head frame too short');
  const length = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
  if (length > maxHeadBytes) throw new Error(`a head of ${length} bytes is over the limit`);
  if (4 + length > payload.byteLength) throw new Error('head longer than its frame');
  const head = JSON.parse(decoder.decode(payload.subarray(4, 4 + length))) as T;
  if (typeof head !== 'object' || head === null) throw new Error('head is not an object');
  return { head, body: payload.subarray(4 + length) };
}

/** The u32 of a CREDIT frame. */
export function creditOf(payload: Uint8Array): number {
  if (payload.byteLength !== 4) throw new Error('credit frame of the wrong size');
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

/** Receives a frame; throwing from it marks the peer as broken. */
export type FrameHandler = (type: number, stream: number, payload: Uint8Array) => void;

/** The part of a stream socket a FrameWriter uses. */
export interface CorkableSink {
  write(bytes: Uint8Array): unknown;
  cork(): void;
  uncork(): void;
}

/**
 * Writes frames to a socket. The first frame of a turn of the event loop goes out at once, so a
 * lone frame (a binding call, its result, the answer to a lone request) waits for nothing; the
 * frames after it in the same turn are corked and leave in one write in the turn's check phase,
 * so the answers to requests that arrived together go out together. Order is kept either way.
 */
export class FrameWriter {
  /** 0: nothing written this turn; 1: one frame went out at once; 2: corked since. */
  private state: 0 | 1 | 2 = 0;
  private readonly endTurn = () => {
    if (this.state === 2) this.sink.uncork();
    this.state = 0;
  };

  constructor(private readonly sink: CorkableSink) {}

  write(bytes: Uint8Array): void {
    if (this.state === 0) {
      this.state = 1;
      setImmediate(this.endTurn);
    } else if (this.state === 1) {
      this.state = 2;
      this.sink.cork();
    }
    this.sink.write(bytes);
  }
}

/**
 * Reassembles frames from the chunks a stream socket delivers. A frame that announces more than
 * `maxPayload` (MAX_FRAME_BYTES unless the channel says less) throws: the caller ends the channel,
 * since a peer that does that is not ours.
 *
 * A frame split over chunks is copied into one buffer of its announced size as its bytes arrive,
 * never kept as the chunks themselves: a peer that sends a frame a byte per read would otherwise
 * make this side hold a Buffer object (~200 bytes) per byte. The buffer's pages are only touched
 * as bytes arrive, so a frame announced but not sent costs little.
 */
export class FrameReader {
  /** The frame being filled (header included), once its header is known. */
  private partial?: Uint8Array;
  private filled = 0;
  /** A header split over chunks. */
  private readonly head = new Uint8Array(HEADER_BYTES);
  private headFilled = 0;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly maxPayload = MAX_FRAME_BYTES,
  ) {}

  /** Feeds bytes read from the socket; calls onFrame for every complete frame. */
  push(chunk: Uint8Array): void {
    let at = 0;
    if (this.headFilled > 0) {
      at = Math.min(chunk.byteLength, HEADER_BYTES - this.headFilled);
      this.head.set(chunk.subarray(0, at), this.headFilled);
      this.headFilled += at;
      if (this.headFilled < HEADER_BYTES) return;
      this.headFilled = 0;
      this.partial = new Uint8Array(HEADER_BYTES + this.payloadLength(this.head, 0));
      this.partial.set(this.head);
      this.filled = HEADER_BYTES;
    }
    if (this.partial) {
      const frame = this.partial;
      const take = Math.min(chunk.byteLength - at, frame.byteLength - this.filled);
      frame.set(chunk.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled < frame.byteLength) return;
      this.partial = undefined;
      this.deliver(frame, 0, frame.byteLength - HEADER_BYTES);
    }
    while (chunk.byteLength - at >= HEADER_BYTES) {
      const length = this.payloadLength(chunk, at);
      const left = chunk.byteLength - at;
      if (left < HEADER_BYTES + length) {
        // Copied: the socket may reuse the chunk's memory.
        this.partial = new Uint8Array(HEADER_BYTES + length);
        this.partial.set(chunk.subarray(at));
        this.filled = left;
        return;
      }
      this.deliver(chunk, at, length);
      at += HEADER_BYTES + length;
    }
    if (at < chunk.byteLength) {
      this.head.set(chunk.subarray(at));
      this.headFilled = chunk.byteLength - at;
    }
  }

  /** The payload length a header at `at` announces; throws past the limit. */
  private payloadLength(bytes: Uint8Array, at: number): number {
    const length = u32(bytes, at);
    if (length > this.maxPayload) throw new Error(`a frame of ${length} bytes is over the limit`);
    return length;
  }

  private deliver(bytes: Uint8Array, at: number, length: number): void {
    const start = at + HEADER_BYTES;
    this.onFrame(bytes[at + 4] as number, u32(bytes, at + 5), bytes.subarray(start, start + length));
  }
}

/** The big-endian u32 at `at`, read without a DataView per frame (the reader's hot path). */
function u32(bytes: Uint8Array, at: number): number {
  return (
    (((bytes[at] as number) << 24) |
      ((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number)) >>>
    0
  );
}
