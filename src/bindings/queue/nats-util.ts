/** Helpers of the NATS Queue provider that need no connection: ack subjects, headers, durability. */

/** What a JetStream ack subject says about one delivery. */
export interface AckInfo {
  stream: string;
  consumer: string;
  /** 1 on the first delivery by this consumer. */
  deliveryCount: number;
  streamSequence: number;
  timestampNanos: number;
}

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or the newer form
 * with a domain and account hash before the stream and a random token at the end.
 */
export function ackInfo(subject: string): AckInfo {
  const t = subject.split('.');
  const at = t.length === 9 ? 2 : 4;
  return {
    stream: t[at] ?? '',
    consumer: t[at + 1] ?? '',
    deliveryCount: Number(t[at + 2]),
    streamSequence: Number(t[at + 3]),
    timestampNanos: Number(t[at + 5]),
  };
}

/** Parses a NATS header block ("NATS/1.0\r\nKey: value\r\n…") as stored messages return it. */
export function parseHeaders(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/**
 * What can be said about whether the server fsyncs a message before acknowledging it. JetStream
 * by default syncs every 2 minutes, so a crash can lose acknowledged messages (Jepsen, 2025).
 */
export async function durabilityReport(version: string, monitorUrl: string | undefined, replicas: number) {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const replicaNote =
    replicas < 3 ? ` Streams have ${replicas} replica(s); in a cluster use replicas: 3.` : '';
  if (major < 2 || (major === 2 && minor < 10))
    return `WARNING: nats-server ${version} cannot fsync each write (it has no sync_interval setting), so a server crash can lose acknowledged messages. Upgrade and set sync_interval: always (docs/operations.md).${replicaNote}`;
  if (!monitorUrl)
    return `Cannot tell whether the server fsyncs each write: set monitorUrl so Kylix can read /varz, and make sure the jetstream block has sync_interval: always (docs/operations.md).${replicaNote}`;
  try {
    const res = await fetch(new URL('/varz', monitorUrl), { signal: AbortSignal.timeout(3000) });
    const varz = (await res.json()) as {
      jetstream?: { config?: { sync_always?: boolean; sync_interval?: number } };
    };
    const cfg = varz.jetstream?.config;
    if (cfg?.sync_always) return `The server fsyncs each write (sync_interval: always).${replicaNote}`;
    const every = cfg?.sync_interval ? `${cfg.sync_interval / 1e9} s` : 'the default interval';
    return `WARNING: the server fsyncs only every ${every}, so a crash can lose acknowledged messages. Set sync_interval: always in the jetstream block (docs/operations.md).${replicaNote}`;
  } catch (err) {
    return `Cannot tell whether the server fsyncs each write: ${monitorUrl}/varz did not answer (${(err as Error).message}).${replicaNote}`;
  }
}
