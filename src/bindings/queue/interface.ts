/**
 * The Queue binding's backend primitives. Producers send (durably, then acknowledged); the
 * platform's consumer loop receives leased messages, invokes the function's queue(batch) handler,
 * then acks, retries with backoff, or moves a message to the dead-letter queue after maxRetries.
 * Providers: embedded (a durable journal in the data folder) and nats (JetStream).
 */
import type { Provider, ResourceRef } from '../provider.js';

/**
 * The largest message body every provider accepts. NATS refuses payloads over its max_payload
 * (1 MiB by default, headers included), so the limit leaves room for Kylix's headers.
 */
export const MAX_MESSAGE_BYTES = 1_000_000;

/** A message to send. `body` is already serialized; `contentType` says how to read it back. */
export interface OutgoingMessage {
  body: Uint8Array;
  contentType: 'json' | 'text' | 'bytes' | 'v8';
  /** Not delivered before this many seconds have passed. */
  delaySeconds?: number;
  /**
   * The W3C traceparent of the span that sent it (set by the supervisor, never by the function),
   * kept with the message so its delivery's span can link to its send.
   */
  traceparent?: string;
}

/** A message leased to one consumer: not delivered to anyone else until acked, retried or the lease ends. */
export interface Delivery {
  /** Identifies this lease for ack/retry/extend. */
  leaseId: string;
  /** The message's id: the same on every delivery of it, never reused for another message of its queue. */
  id: string;
  body: Uint8Array;
  contentType: OutgoingMessage['contentType'];
  /** 1 on the first delivery. */
  attempts: number;
  /** When it was sent, ms since the epoch. */
  timestamp: number;
  /** The traceparent it was sent with, if tracing was on then. */
  traceparent?: string;
}

/** Counts for `kylix queue stats`. */
export interface QueueStats {
  /** Deliverable now. */
  ready: number;
  /** Leased to a consumer. */
  inFlight: number;
  /** Waiting for their delay or backoff. */
  delayed: number;
}

/** A Queue backend. */
export interface QueueProvider extends Provider {
  /** Resolves only once every message is durable: an acknowledged send survives a crash. */
  send(ref: ResourceRef, messages: OutgoingMessage[]): Promise<void>;
  /** Up to `max` deliverable messages, each leased for `leaseMs`; may wait up to `waitMs` for the first. */
  receive(ref: ResourceRef, options: { max: number; leaseMs: number; waitMs: number }): Promise<Delivery[]>;
  /** Keeps a lease alive while a slow handler still runs (so it is not redelivered under it). */
  extend(ref: ResourceRef, leaseIds: string[], leaseMs: number): Promise<void>;
  /** Done: the message is gone for good. */
  ack(ref: ResourceRef, leaseIds: string[]): Promise<void>;
  /** Deliver again after `delaySeconds`, counting one more attempt. */
  retry(ref: ResourceRef, leaseId: string, delaySeconds: number): Promise<void>;
  stats(ref: ResourceRef): Promise<QueueStats>;
  /**
   * When the oldest message not yet acked was sent (ms since the epoch), or undefined when there is
   * none; for metrics (both providers have it; optional so a stand-in provider may leave it out).
   */
  oldestTimestamp?(ref: ResourceRef): Promise<number | undefined>;
  /**
   * The messages waiting (not leased), oldest first, without leasing them (for `kylix queue dlq list`).
   * Their `attempts` counts past deliveries: 0 for a message never delivered.
   */
  peek(ref: ResourceRef, limit: number): Promise<Omit<Delivery, 'leaseId'>[]>;
}
