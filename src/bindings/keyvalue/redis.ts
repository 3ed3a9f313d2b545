/**
 * The Redis KeyValue provider (ioredis, imported only when this provider is chosen).
 *
 * Layout, per resource, under `<keyPrefix>{<namespace>/<name>}:` (the braces are a Redis Cluster
 * hash tag: all of a resource's keys share one slot, so MULTI and scripts may span them):
 * - `v:<key>` a string: a small header (format, expiration, metadata) then the value, so a get is
 *   one GET and a put one SET … PXAT, which Redis itself expires;
 * - `i` a sorted set of every key, all scored 0, so ZRANGEBYLEX lists keys in byte order from a
 *   prefix or a cursor. Members whose value has expired are dropped lazily, as listings meet them.
 */
import type { Redis as RedisClient } from 'ioredis';
import { KylixError } from '../../errors.js';
import { compareUtf8 } from '../../storage/sorted-keys.js';
import { checkRef, encodeCursor } from '../arguments.js';
import { resourceIdentity } from '../identity.js';
import type { Health, ResourceRef } from '../provider.js';
import { type CheckedPut, checkKvKey, checkKvList, checkKvPut } from './checks.js';
import { type KeyValueProvider, KV_LIMITS, type KvEntry, type KvListResult } from './interface.js';

/** Where the Redis provider connects. */
export interface RedisKeyValueConfig {
  /** redis://[user:password@]host:port[/db], or rediss:// for TLS. */
  url: string;
  /** Prepended to every key (default "kylix:kv:"), to share a Redis with other applications. */
  keyPrefix?: string;
}

const FORMAT = 1;
/** format (1 byte) + expiration (float64, NaN for none) + metadata length (uint32). */
const HEADER_BYTES = 13;
/** Enough of a value to read its header with the largest metadata allowed. */
const MAX_HEADER_BYTES = HEADER_BYTES + KV_LIMITS.maxMetadataBytes;

/** Drops index members whose value is gone, atomically, so a key put again meanwhile is kept. */
const DROP_STALE = `
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('ZREM', KEYS[1], ARGV[i - 1]) end
end
return 0`;

/** Connects to Redis (lazily importing ioredis) and returns the provider. */
/** How long one Redis command may take before the call fails. */
const COMMAND_TIMEOUT_MS = 5000;

export async function openRedisKeyValue(config: RedisKeyValueConfig): Promise<RedisKeyValue> {
  const { Redis } = await import('ioredis');
  const client = new Redis(config.url, {
    lazyConnect: true,
    // Fail a call after one reconnection attempt instead of queueing it for ever, with attempts at
    // most a second apart (the default backs off to 2 s, and a call waited 9 s for a Redis that was down).
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    connectTimeout: 5000,
    // A Redis that accepts the connection but does not answer (paused, swapping) fails the call
    // with a reason instead of holding it until the function's own timeout blames the function.
    commandTimeout: COMMAND_TIMEOUT_MS,
  });
  return new RedisKeyValue(client, config);
}

/** Serializes an entry as the stored string: header, metadata JSON, value. */
export function encodeValue(put: CheckedPut): Buffer {
  const meta = put.metadata === undefined ? undefined : Buffer.from(put.metadata);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(FORMAT, 0);
  header.writeDoubleBE(put.expiration ?? Number.NaN, 1);
  header.writeUInt32BE(meta?.length ?? 0, 9);
  return Buffer.concat(meta ? [header, meta, put.value] : [header, put.value]);
}

/** Reads an entry back; with only a prefix of the string (a listing), the value is cut short. */
export function decodeValue(data: Buffer): { entry: KvEntry; hasMetadata: boolean } {
  if (data.length < HEADER_BYTES || data.readUInt8(0) !== FORMAT) {
    throw new KylixError('ERR_INTERNAL', 'A KeyValue entry in Redis is not in a format Kylix wrote.');
  }
  const exp = data.readDoubleBE(1);
  const metaLength = data.readUInt32BE(9);
  const start = HEADER_BYTES + metaLength;
  const entry: KvEntry = { value: new Uint8Array(data.buffer, data.byteOffset + start, data.length - start) };
  if (metaLength > 0) entry.metadata = JSON.parse(data.toString('utf8', HEADER_BYTES, start));
  if (!Number.isNaN(exp)) entry.expiration = exp;
  return { entry, hasMetadata: metaLength > 0 };
}

/** The Redis provider; see the file comment. */
export class RedisKeyValue implements KeyValueProvider {
  readonly name = 'redis';
  private lastError?: Error;
  private readonly keyPrefix: string;
  private readonly where: string;

  constructor(
    private readonly client: RedisClient,
    config: RedisKeyValueConfig,
  ) {
    this.keyPrefix = config.keyPrefix ?? 'kylix:kv:';
    // Host and port only: the URL may hold a password, which must not reach an error message.
    this.where = `${client.options.host ?? '?'}:${client.options.port ?? '?'}`;
    client.on('error', (err: Error) => {
      this.lastError = err;
    });
  }

  async ensure(ref: ResourceRef): Promise<void> {
    // Keys appear on first put; checking the connection here makes a bad URL fail at apply time.
    checkRef(ref);
    await this.run(() => this.client.ping());
  }

  async purge(ref: ResourceRef): Promise<void> {
    checkRef(ref);
    const match = `${escapeGlob(this.base(ref))}*`;
    await this.run(async () => {
      let cursor = '0';
      do {
        const [next, keys] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        if (keys.length > 0) await this.client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    });
  }

  async health(): Promise<Health> {
    try {
      const started = Date.now();
      await this.run(() => this.client.ping());
      return { ok: true, message: `redis at ${this.where}, ping ${Date.now() - started} ms` };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }

  async get(ref: ResourceRef, key: string): Promise<KvEntry | null> {
    checkKvKey(ref, key);
    const data = await this.run(() => this.client.getBuffer(this.valueKey(ref, key)));
    return data ? decodeValue(data).entry : null;
  }

  async put(
    ref: ResourceRef,
    key: string,
    value: Uint8Array,
    options?: { expiration?: number; metadata?: unknown },
  ): Promise<void> {
    const put = checkKvPut(ref, key, value, options);
    const data = encodeValue(put);
    const tx = this.client.multi();
    // Without PXAT, SET also clears the TTL an earlier put may have set.
    if (put.expiration === undefined) tx.set(this.valueKey(ref, key), data);
    else tx.set(this.valueKey(ref, key), data, 'PXAT', Math.ceil(put.expiration * 1000));
    tx.zadd(this.indexKey(ref), 0, key);
    await this.exec(tx);
  }

  async delete(ref: ResourceRef, key: string): Promise<void> {
    checkKvKey(ref, key);
    const tx = this.client.multi().unlink(this.valueKey(ref, key)).zrem(this.indexKey(ref), key);
    await this.exec(tx);
  }

  async list(
    ref: ResourceRef,
    options?: { prefix?: string; limit?: number; cursor?: string },
  ): Promise<KvListResult> {
    const { prefix, limit, after } = checkKvList(ref, options);
    const index = this.indexKey(ref);
    // Byte-order bounds: valid UTF-8 never holds 0xff, so prefix+0xff is above every key with the prefix.
    let min: string | Buffer =
      after !== undefined && compareUtf8(after, prefix) >= 0
        ? `(${after}`
        : prefix === ''
          ? '-'
          : `[${prefix}`;
    const max = prefix === '' ? '+' : Buffer.concat([Buffer.from(`(${prefix}`), Buffer.from([0xff])]);
    const keys: KvListResult['keys'] = [];
    // Fetch one more than the page, so list_complete is exact; go on while expired members thin it out.
    for (;;) {
      const want = limit + 1 - keys.length;
      const members = await this.run(() => this.client.zrangebylex(index, min, max, 'LIMIT', 0, want));
      if (members.length === 0) break;
      const pipe = this.client.pipeline();
      for (const m of members) pipe.getrangeBuffer(this.valueKey(ref, m), 0, MAX_HEADER_BYTES - 1);
      const heads = await this.exec(pipe);
      const stale: string[] = [];
      for (const [i, m] of members.entries()) {
        const head = heads[i] as Buffer;
        if (head.length === 0) {
          stale.push(m);
          continue;
        }
        const { entry, hasMetadata } = decodeValue(head);
        const item: KvListResult['keys'][number] = { name: m };
        if (entry.expiration !== undefined) item.expiration = entry.expiration;
        if (hasMetadata) item.metadata = entry.metadata;
        keys.push(item);
      }
      if (stale.length > 0) await this.dropStale(ref, stale);
      if (keys.length > limit) {
        keys.length = limit;
        return { keys, list_complete: false, cursor: encodeCursor(keys[limit - 1]!.name) };
      }
      if (members.length < want) break;
      min = `(${members[members.length - 1]!}`;
    }
    return { keys, list_complete: true };
  }

  async close(): Promise<void> {
    if (this.client.status === 'end') return;
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  private base(ref: ResourceRef): string {
    return `${this.keyPrefix}{${resourceIdentity(ref).path}}:`;
  }

  private valueKey(ref: ResourceRef, key: string): string {
    return `${this.base(ref)}v:${key}`;
  }

  private indexKey(ref: ResourceRef): string {
    return `${this.base(ref)}i`;
  }

  private async dropStale(ref: ResourceRef, members: string[]): Promise<void> {
    const keys = [this.indexKey(ref), ...members.map((m) => this.valueKey(ref, m))];
    await this.run(() => this.client.eval(DROP_STALE, keys.length, ...keys, ...members));
  }

  /** Runs a MULTI or pipeline; any failed command fails the call. */
  private async exec(batch: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
    const results = await this.run(() => batch.exec());
    if (!results) throw this.unavailable(new Error('the transaction was aborted'));
    return results.map(([err, value]) => {
      if (err) throw this.unavailable(err);
      return value;
    });
  }

  /** Runs a call, turning a Redis failure into a KylixError that names the server (not its password). */
  private async run<T>(call: () => Promise<T>): Promise<T> {
    // Known to be down (it was connected, and is reconnecting): fail now, not after a retry.
    if (this.client.status === 'reconnecting')
      throw this.unavailable(new Error('the connection is down and being re-established'));
    try {
      return await call();
    } catch (err) {
      throw err instanceof KylixError ? err : this.unavailable(err as Error);
    }
  }

  private unavailable(err: Error): KylixError {
    const detail = this.lastError && this.lastError !== err ? ` (${this.lastError.message})` : '';
    // ioredis's own wording names its options; say what happened instead.
    const what = /max retries per request|Connection is closed/i.test(err.message)
      ? 'the connection was lost'
      : /Command timed out/i.test(err.message)
        ? `no answer within ${COMMAND_TIMEOUT_MS / 1000} s (a write may still have been applied)`
        : err.message;
    const wrapped = new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `Redis at ${this.where} failed: ${what}${detail}. Check that it is running and reachable.`,
    );
    wrapped.cause = err;
    return wrapped;
  }
}

/** Escapes SCAN MATCH's glob characters, so a prefix matches only itself. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
