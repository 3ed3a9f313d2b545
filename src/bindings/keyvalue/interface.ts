/**
 * The KeyValue binding: Workers KV shapes (get/getWithMetadata/put/delete/list with TTLs, metadata
 * and prefix listing). Providers: embedded (a journal in the data folder) and redis.
 */
import type { Provider, ResourceRef } from '../provider.js';

/** One stored value. `expiration` is absolute, in seconds since the epoch. */
export interface KvEntry {
  value: Uint8Array;
  metadata?: unknown;
  expiration?: number;
}

/** One page of a listing, in lexicographic key order (as Workers KV returns it). */
export interface KvListResult {
  keys: { name: string; expiration?: number; metadata?: unknown }[];
  list_complete: boolean;
  /** Pass back to get the next page; absent when list_complete. */
  cursor?: string;
}

/** Limits every provider enforces the same way (Workers KV's, but for the TTL floor). */
export const KV_LIMITS = {
  maxKeyBytes: 512,
  maxValueBytes: 25 * 1024 * 1024,
  maxMetadataBytes: 1024,
  maxListLimit: 1000,
  minTtlSeconds: 1,
};

/** A KeyValue backend. Expired entries are never returned, by get or list. */
export interface KeyValueProvider extends Provider {
  get(ref: ResourceRef, key: string): Promise<KvEntry | null>;
  /** Resolves once the write is durable (embedded: fsynced; redis: acknowledged). */
  put(
    ref: ResourceRef,
    key: string,
    value: Uint8Array,
    options?: {
      expiration?: number;
      metadata?: unknown;
      /**
       * A cache's space: after the put, its least recently put entries are deleted until it holds at
       * most this many bytes. Only the embedded provider, which holds every entry in memory, needs
       * it; on Redis, its own maxmemory policy is the bound.
       */
      capacity?: number;
    },
  ): Promise<void>;
  delete(ref: ResourceRef, key: string): Promise<void>;
  list(
    ref: ResourceRef,
    options?: { prefix?: string; limit?: number; cursor?: string },
  ): Promise<KvListResult>;
}
