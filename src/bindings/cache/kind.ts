/**
 * The Workers Cache API (`caches.default`, `caches.open(name)`) as an implicit binding: every
 * function has it, no manifest names it. Entries live in the installation's KeyValue backend (so a
 * fleet shares them), in the calling namespace's internal `caches` space (entry.ts), and expire
 * with the TTL the guest computed from the response's Cache-Control or Expires
 * (src/sandbox/workers-compat/cache-policy.ts). What a sandbox may send here only ever reaches its
 * own namespace's space; the supervisor bounds every size.
 */
import { z } from 'zod';
import { KEY_VALUE } from '../../resources/binding-kinds.js';
import { internalSpace } from '../identity.js';
import type { KeyValueProvider } from '../keyvalue/interface.js';
import { type ImplicitBindingKind, operations } from '../kind.js';
import { CACHE_LIMITS, cacheKey, decodeEntry, encodeEntry } from './entry.js';

/** The binding name the guest's `caches` calls under; the same constant is in src/sandbox/workers-compat/caches.ts. */
export const CACHE_BINDING = '#caches';

const op = operations<KeyValueProvider>();
const cacheName = z.string().max(CACHE_LIMITS.maxNameBytes);
const url = z.string().min(1).max(CACHE_LIMITS.maxUrlBytes);
const header = z.tuple([z.string().max(256), z.string().max(CACHE_LIMITS.maxHeadBytes)]);

/** See the file comment. */
export const cacheKind = {
  binding: CACHE_BINDING,
  provider: KEY_VALUE,
  ref: (namespace: string) => internalSpace(namespace, 'caches'),
  ops: {
    /** The entry stored for a URL, or null; the guest checks Vary and builds the Response. */
    match: op(z.tuple([cacheName, url]), async (kv, [name, u], { ref }) => {
      const stored = await kv.get(ref, cacheKey(name, u));
      const entry = stored && decodeEntry(stored.value);
      return entry && entry.head.url === u ? entry : null;
    }),
    put: op(
      z.tuple([
        cacheName,
        url,
        z.strictObject({
          status: z.number().int().min(200).max(599),
          statusText: z.string().max(512),
          headers: z.array(header).max(256),
          vary: z.array(z.tuple([z.string().max(256), z.string().max(8192).nullable()])).max(32),
        }),
        z.instanceof(Uint8Array),
        z.number().int().min(1).max(CACHE_LIMITS.maxTtlSeconds),
      ]),
      async (kv, [name, u, head, body, ttl], { ref }) => {
        const value = encodeEntry({ ...head, url: u, stored: Date.now() }, body);
        await kv.put(ref, cacheKey(name, u), value, {
          expiration: Math.floor(Date.now() / 1000) + ttl,
          capacity: CACHE_LIMITS.maxNamespaceBytes,
        });
      },
    ),
    /** Removes the entry of a URL; answers whether there was one. */
    delete: op(z.tuple([cacheName, url]), async (kv, [name, u], { ref }) => {
      const key = cacheKey(name, u);
      const existed = (await kv.get(ref, key)) !== null;
      if (existed) await kv.delete(ref, key);
      return existed;
    }),
  },
} satisfies ImplicitBindingKind<typeof KEY_VALUE, KeyValueProvider>;
