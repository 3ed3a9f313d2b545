/**
 * The NATS JetStream Queue provider. Each queue is one stream (file storage, WorkQueue retention)
 * with two subjects: `<base>.ready` read by the durable pull consumer "ready" (explicit ack), and
 * `<base>.delayed` for messages sent with delaySeconds. nats-server 2.9 cannot schedule delivery,
 * so a receive first drains "delayed": a due message is republished to `ready` (deduplicated by
 * Nats-Msg-Id, then acked); an early one is nak'ed for its remaining delay. Delays thus never
 * touch "ready"'s delivery count, which is exactly the attempt count. A lease id is the
 * message's JetStream ack subject, so any node can ack, extend or retry it.
 * Durability depends on the server's fsync policy: see docs/operations.md.
 */

import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { KylixError } from '../../errors.js';
import { resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import type { Delivery, OutgoingMessage, QueueProvider, QueueStats } from './interface.js';
import { ackInfo, durabilityReport, parseHeaders } from './nats-util.js';
import { checkMessages, checkReceive } from './validate.js';

/** Options of the NATS provider. */
export interface NatsQueueOptions {
  /** nats://host:port (comma-separated for several servers). */
  url: string;
  /** Stream replicas; 3 in a cluster, so an acked message survives a node's loss. */
  replicas?: number;
  /** The server's monitoring URL (http://host:8222), so health() can read its fsync policy. */
  monitorUrl?: string;
}

const H_TYPE = 'Kylix-Content-Type';
const H_ID = 'Kylix-Id';
const H_SENT = 'Kylix-Sent';
const H_NOT_BEFORE = 'Kylix-Not-Before';
/** The sender's W3C trace context, under its standard header name. */
const H_TRACEPARENT = 'traceparent';
/** The longest a waiting receive leaves `delayed` unchecked, so a due message is at most this late. */
const DELAY_POLL_MS = 1000;
const DEFAULT_LEASE_MS = 30_000;

interface Names {
  stream: string;
  ready: string;
  delayed: string;
}

/** The servers of a NATS URL list, without any credentials they carry (errors reach functions). */
function serversOf(url: string): string {
  return url
    .split(',')
    .map((u) => {
      try {
        return new URL(u.includes('://') ? u : `nats://${u}`).host;
      } catch {
        return 'the configured server';
      }
    })
    .join(',');
}

/** How long a JetStream request (a publish, a stream lookup) may go unanswered before the call fails. */
const REQUEST_TIMEOUT_MS = 5000;

/** Connects to NATS (the driver is imported only now) and returns the provider. */
export async function openNatsQueue(options: NatsQueueOptions): Promise<NatsQueueProvider> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url.split(','),
      name: 'kylix',
      timeout: 5000,
      maxReconnectAttempts: -1,
    });
  } catch (err) {
    throw new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `Cannot connect to NATS at ${serversOf(options.url)}: ${(err as Error).message}. Check the queue backend URL and that nats-server runs with JetStream enabled.`,
    );
  }
  const jsm = await jetstreamManager(nc, { timeout: REQUEST_TIMEOUT_MS });
  return new NatsQueueProvider(nc, jsm, jetstream(nc, { timeout: REQUEST_TIMEOUT_MS }), options);
}

/** The NATS JetStream Queue provider; see the file comment. */
export class NatsQueueProvider implements QueueProvider {
  readonly name = 'nats';
  /** Each queue's current ack wait (ms), once known: receive changes it when leaseMs differs. */
  private readonly ackWait = new Map<string, number>();
  private readonly encoder = new TextEncoder();

  /** False while the connection is down (between a disconnect and the reconnect). */
  private connected = true;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly options: NatsQueueOptions,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.connected = false;
        else if (s.type === 'reconnect') this.connected = true;
      }
    })().catch(() => {});
  }

  private names(ref: ResourceRef): Names {
    const id = resourceIdentity(ref).token;
    return { stream: `KYLIX_Q_${id}`, ready: `kylix.q.${id}.ready`, delayed: `kylix.q.${id}.delayed` };
  }

  async ensure(ref: ResourceRef): Promise<void> {
    const n = this.names(ref);
    await this.call(async () => {
      if (!(await this.exists(n.stream))) {
        await this.jsm.streams.add({
          name: n.stream,
          subjects: [n.ready, n.delayed],
          retention: 'workqueue' as never,
          storage: 'file' as never,
          num_replicas: this.options.replicas ?? 1,
        });
      }
      for (const [durable, subject] of [
        ['ready', n.ready],
        ['delayed', n.delayed],
      ] as const) {
        const info = await this.jsm.consumers.info(n.stream, durable).catch(() => undefined);
        if (info) continue;
        await this.jsm.consumers.add(n.stream, {
          durable_name: durable,
          filter_subject: subject,
          ack_policy: 'explicit' as never,
          deliver_policy: 'all' as never,
          ack_wait: DEFAULT_LEASE_MS * 1e6,
          max_deliver: -1,
          max_ack_pending: 10_000,
        });
      }
    });
  }

  async purge(ref: ResourceRef): Promise<void> {
    const n = this.names(ref);
    this.ackWait.delete(n.stream);
    await this.call(async () => {
      if (await this.exists(n.stream)) await this.jsm.streams.delete(n.stream);
    });
  }

  async health(): Promise<Health> {
    try {
      await this.jsm.getAccountInfo();
    } catch (err) {
      return { ok: false, message: `NATS JetStream is not usable: ${(err as Error).message}` };
    }
    const version = this.nc.info?.version ?? 'unknown';
    const durability = await durabilityReport(version, this.options.monitorUrl, this.options.replicas ?? 1);
    return { ok: true, message: `NATS ${version} at ${this.nc.getServer()}. ${durability}` };
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }

  async send(ref: ResourceRef, messages: OutgoingMessage[]): Promise<void> {
    checkMessages(messages);
    const n = this.names(ref);
    const { headers } = await import('@nats-io/transport-node');
    const now = Date.now();
    await this.call(
      () =>
        Promise.all(
          messages.map((m) => {
            const h = headers();
            h.set(H_TYPE, m.contentType);
            if (m.traceparent) h.set(H_TRACEPARENT, m.traceparent);
            const delayed = (m.delaySeconds ?? 0) > 0;
            if (delayed) {
              h.set(H_SENT, String(now));
              h.set(H_NOT_BEFORE, String(now + Math.round(m.delaySeconds! * 1000)));
            }
            // The PubAck comes once the stream has stored the message: this is the durability point.
            return this.js.publish(delayed ? n.delayed : n.ready, m.body, { headers: h });
          }),
        ),
      ref,
    );
  }

  async receive(
    ref: ResourceRef,
    options: { max: number; leaseMs: number; waitMs: number },
  ): Promise<Delivery[]> {
    checkReceive(options);
    const n = this.names(ref);
    await this.setLease(ref, n, options.leaseMs);
    const deadline = Date.now() + options.waitMs;
    return this.call(async () => {
      await this.releaseDue(n);
      let got = await this.pull(n.stream, 'ready', options.max, 0);
      // JetStream holds a pull open until the whole batch is filled, so wait for the first message
      // alone, then take whatever else is there without waiting.
      while (got.length === 0 && Date.now() < deadline) {
        const slice = Math.min(deadline - Date.now(), DELAY_POLL_MS);
        got = await this.pull(n.stream, 'ready', 1, Math.max(slice, 10));
        if (got.length > 0 && options.max > 1)
          got.push(...(await this.pull(n.stream, 'ready', options.max - 1, 0)));
        if (got.length === 0) await this.releaseDue(n);
      }
      return got.map((m) => this.delivery(m));
    }, ref);
  }

  async extend(ref: ResourceRef, leaseIds: string[], _leaseMs: number): Promise<void> {
    // working() restarts the consumer's ack wait (the lease of the latest receive).
    await this.reply(ref, leaseIds, '+WPI');
  }

  async ack(ref: ResourceRef, leaseIds: string[]): Promise<void> {
    await this.reply(ref, leaseIds, '+ACK');
  }

  async retry(ref: ResourceRef, leaseId: string, delaySeconds: number): Promise<void> {
    const delay = Math.max(0, Math.round(delaySeconds * 1000));
    await this.reply(ref, [leaseId], delay > 0 ? `-NAK ${JSON.stringify({ delay: delay * 1e6 })}` : '-NAK');
  }

  async stats(ref: ResourceRef): Promise<QueueStats> {
    const n = this.names(ref);
    return this.call(async () => {
      const [ready, delayed] = await Promise.all([
        this.jsm.consumers.info(n.stream, 'ready'),
        this.jsm.consumers.info(n.stream, 'delayed'),
      ]);
      return {
        ready: ready.num_pending,
        inFlight: ready.num_ack_pending,
        delayed: delayed.num_pending + delayed.num_ack_pending,
      };
    }, ref);
  }

  async oldestTimestamp(ref: ResourceRef): Promise<number | undefined> {
    const n = this.names(ref);
    return this.call(async () => {
      // A WorkQueue stream keeps only unacked messages: its first one is the oldest. (A delayed
      // message moved to ready counts from its move.)
      const { state } = await this.jsm.streams.info(n.stream);
      const first = state.messages > 0 ? Date.parse(state.first_ts) : Number.NaN;
      return Number.isFinite(first) ? first : undefined;
    }, ref);
  }

  async peek(ref: ResourceRef, limit: number): Promise<Omit<Delivery, 'leaseId'>[]> {
    const n = this.names(ref);
    return this.call(async () => {
      // Messages after the consumer's last delivery have never been leased.
      const info = await this.jsm.consumers.info(n.stream, 'ready');
      const out: Omit<Delivery, 'leaseId'>[] = [];
      let seq = info.delivered.stream_seq + 1;
      while (out.length < limit) {
        const res = await this.nc.request(
          `$JS.API.STREAM.MSG.GET.${n.stream}`,
          JSON.stringify({ seq, next_by_subj: n.ready }),
          { timeout: 10_000 },
        );
        const body = res.json<{ message?: { seq: number; hdrs?: string; data?: string; time: string } }>();
        const m = body.message;
        if (!m) break;
        const h = parseHeaders(m.hdrs ? Buffer.from(m.hdrs, 'base64').toString() : '');
        out.push({
          id: h.get(H_ID) ?? String(m.seq),
          body: new Uint8Array(Buffer.from(m.data ?? '', 'base64')),
          contentType: (h.get(H_TYPE) ?? 'bytes') as Delivery['contentType'],
          attempts: 0,
          timestamp: Number(h.get(H_SENT)) || Date.parse(m.time),
        });
        seq = m.seq + 1;
      }
      return out;
    }, ref);
  }

  /** Whether a stream exists. */
  private async exists(stream: string): Promise<boolean> {
    try {
      await this.jsm.streams.info(stream);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Makes the consumer's ack wait the requested lease (JetStream's lease is per consumer, not per fetch). */
  private async setLease(ref: ResourceRef, n: Names, leaseMs: number): Promise<void> {
    if (this.ackWait.get(n.stream) === leaseMs) return;
    await this.call(async () => {
      const info = await this.jsm.consumers.info(n.stream, 'ready');
      if (info.config.ack_wait !== leaseMs * 1e6)
        await this.jsm.consumers.update(n.stream, 'ready', { ack_wait: leaseMs * 1e6 });
    }, ref);
    this.ackWait.set(n.stream, leaseMs);
  }

  /** Moves due delayed messages to `ready`; naks early ones for the rest of their delay. */
  private async releaseDue(n: Names): Promise<void> {
    const msgs = await this.pull(n.stream, 'delayed', 256, 0);
    const now = Date.now();
    await Promise.all(
      msgs.map(async (m) => {
        const notBefore = Number(m.headers?.get(H_NOT_BEFORE)) || 0;
        if (notBefore > now) {
          await this.nc.request(m.reply!, `-NAK ${JSON.stringify({ delay: (notBefore - now) * 1e6 })}`);
          return;
        }
        const { headers } = await import('@nats-io/transport-node');
        const h = headers();
        const seq = String(ackInfo(m.reply!).streamSequence);
        h.set(H_TYPE, m.headers?.get(H_TYPE) || 'bytes');
        h.set(H_SENT, m.headers?.get(H_SENT) || String(now));
        h.set(H_ID, `d${seq}`);
        const tp = m.headers?.get(H_TRACEPARENT);
        if (tp) h.set(H_TRACEPARENT, tp);
        // If we crash between publish and ack, the redelivered copy is dropped as a duplicate.
        await this.js.publish(n.ready, m.data, { headers: h, msgID: `${n.stream}-delayed-${seq}` });
        await this.nc.request(m.reply!, '+ACK');
      }),
    );
  }

  /**
   * One pull request on a consumer: up to `batch` messages, waiting up to `expiresMs` (0: only what
   * is there now). Spoken at the protocol level because the client's fetch() cannot wait under 1 s.
   */
  private async pull(stream: string, consumer: string, batch: number, expiresMs: number): Promise<Msg[]> {
    const { createInbox } = await import('@nats-io/transport-node');
    const inbox = createInbox();
    const sub = this.nc.subscribe(inbox);
    const request =
      expiresMs > 0 ? { batch, expires: Math.round(expiresMs * 1e6) } : { batch, no_wait: true };
    // The server ends the request with a status (404, 408, 409); the timer is only a safety net.
    const timer = setTimeout(() => sub.unsubscribe(), expiresMs + 10_000);
    this.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(request), {
      reply: inbox,
    });
    const out: Msg[] = [];
    try {
      for await (const m of sub) {
        const code = m.headers?.code ?? 0;
        if (m.data.length === 0 && code >= 100) {
          if (code === 503) throw new Error('no responders: the consumer does not exist');
          if (code === 100) continue;
          break;
        }
        out.push(m);
        if (out.length >= batch) break;
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    return out;
  }

  private delivery(m: Msg): Delivery {
    const info = ackInfo(m.reply!);
    const h = m.headers;
    return {
      leaseId: m.reply!,
      id: h?.get(H_ID) || String(info.streamSequence),
      body: m.data,
      contentType: (h?.get(H_TYPE) || 'bytes') as Delivery['contentType'],
      attempts: info.deliveryCount,
      timestamp: Number(h?.get(H_SENT)) || Math.floor(info.timestampNanos / 1e6),
      ...(h?.get(H_TRACEPARENT) ? { traceparent: h.get(H_TRACEPARENT) } : {}),
    };
  }

  /** Sends an ack-kind reply for each lease and waits for the server to confirm it. */
  private async reply(ref: ResourceRef, leaseIds: string[], payload: string): Promise<void> {
    const prefix = `$JS.ACK.${this.names(ref).stream}.ready.`;
    // A lease id is a subject: only this queue's ack subjects are honoured, never another queue's.
    const valid = leaseIds.filter((l) => l.startsWith(prefix) && !/[\s*>]/.test(l));
    await this.call(
      () =>
        Promise.all(valid.map((l) => this.nc.request(l, this.encoder.encode(payload), { timeout: 10_000 }))),
      ref,
    );
  }

  /** Runs a backend call, turning NATS errors into KylixErrors a user can act on. */
  private async call<T>(fn: () => Promise<T>, ref?: ResourceRef): Promise<T> {
    // Known to be down: fail now, not after the request's timeout.
    if (!this.connected || this.nc.isClosed())
      throw this.unavailable('the connection is down and being re-established');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KylixError && err.code !== 'ERR_NOT_FOUND') throw err;
      const message = (err as Error).message ?? String(err);
      if (/max.?payload/i.test(message))
        throw new KylixError('ERR_MESSAGE_TOO_LARGE', `NATS refused the message: ${message}`);
      // A server that did not answer in time would not answer whether the queue exists either.
      if (/timeout/i.test(message) || (err as { code?: unknown }).code === 'TIMEOUT')
        throw this.unavailable(
          `${message} (no answer within ${REQUEST_TIMEOUT_MS / 1000} s; what was sent may still have been applied)`,
        );
      // Without its stream, a publish meets no responder (which the client reports as "JetStream
      // not enabled") and a pull a 503: ask whether the queue exists before blaming the server.
      if (ref && !(await this.exists(this.names(ref).stream).catch(() => true))) {
        this.ackWait.delete(this.names(ref).stream);
        throw new KylixError(
          'ERR_NOT_FOUND',
          `Queue "${ref.name}" does not exist in namespace "${ref.namespace}". Apply its manifest first.`,
        );
      }
      throw this.unavailable(message);
    }
  }

  private unavailable(why: string): KylixError {
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `NATS JetStream at ${serversOf(this.options.url)} failed: ${why}. Check that nats-server is running and reachable.`,
    );
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; name?: string; message?: string };
  return e?.code === 404 || /not found/i.test(e?.message ?? '') || /NotFound/.test(e?.name ?? '');
}
