/**
 * The supervisor side of bindings: every env.X call from a function arrives here as a small
 * request (binding name, operation, arguments) and is checked before any backend is touched —
 * the binding must be in the revision's manifest, the resource must exist in the function's own
 * namespace, the operation must be one the kind has, and the arguments must have the right shape.
 * A function therefore reaches only what its manifest binds; the supervisor enforces it.
 */
import { z } from 'zod';
import type { Registry } from '../control-plane/registry.js';
import { KylixError } from '../errors.js';
import type { FunctionSpec } from '../resources/kinds.js';
import { issuesToCauses } from '../resources/validate.js';
import type { BucketProvider } from './bucket/interface.js';
import type { DatabaseProvider } from './database/interface.js';
import { scopedKey } from './identity.js';
import type { KeyValueProvider } from './keyvalue/interface.js';
import type { ResourceRef } from './provider.js';
import type { QueueProvider } from './queue/interface.js';

/** One call from a function. */
export interface BindingRequest {
  binding: string;
  op: string;
  args: unknown[];
}

/** Who is calling: the function's namespace and the bindings of the revision it runs. */
export interface BindingScope {
  namespace: string;
  functionName: string;
  bindings: FunctionSpec['bindings'];
}

/** The providers, created on first use so an unused backend costs nothing. */
export interface Providers {
  keyValue(): Promise<KeyValueProvider>;
  database(): Promise<DatabaseProvider>;
  queue(): Promise<QueueProvider>;
  bucket(): Promise<BucketProvider>;
}

const bytes = z.instanceof(Uint8Array);
const statement = z.strictObject({ sql: z.string().min(1), params: z.array(z.unknown()).optional() });

/** Argument shapes per kind and operation: anything else is refused. */
const OPS = {
  keyValue: {
    get: z.tuple([z.string()]),
    put: z.tuple([
      z.string(),
      bytes,
      z.strictObject({ expiration: z.number().optional(), metadata: z.unknown().optional() }),
    ]),
    delete: z.tuple([z.string()]),
    list: z.tuple([
      z.strictObject({
        prefix: z.string().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
        cursor: z.string().optional(),
      }),
    ]),
  },
  database: {
    query: z.tuple([statement]),
    batch: z.tuple([z.array(statement).max(1000)]),
    begin: z.tuple([z.number().int().min(1).max(60_000)]),
    queryInTransaction: z.tuple([z.string(), statement]),
    commit: z.tuple([z.string()]),
    rollback: z.tuple([z.string()]),
  },
  queue: {
    send: z.tuple([
      z
        .array(
          z.strictObject({
            body: bytes,
            contentType: z.enum(['json', 'text', 'bytes', 'v8']),
            delaySeconds: z.number().int().min(0).max(43_200).optional(),
          }),
        )
        .min(1)
        .max(100),
    ]),
  },
  bucket: {
    put: z.tuple([
      z.string().min(1).max(1024),
      bytes,
      z.strictObject({
        httpMetadata: z.record(z.string(), z.string()).optional(),
        customMetadata: z.record(z.string(), z.string()).optional(),
      }),
    ]),
    get: z.tuple([
      z.string(),
      z.strictObject({
        range: z
          .union([
            z.strictObject({ offset: z.number().int().min(0), length: z.number().int().min(0).optional() }),
            z.strictObject({ suffix: z.number().int().min(1) }),
          ])
          .optional(),
      }),
    ]),
    head: z.tuple([z.string()]),
    delete: z.tuple([z.union([z.string(), z.array(z.string()).max(1000)])]),
    list: z.tuple([
      z.strictObject({
        prefix: z.string().optional(),
        delimiter: z.string().optional(),
        cursor: z.string().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      }),
    ]),
  },
} as const;

type Kind = keyof typeof OPS;
const RESOURCE_KIND: Record<Kind, string> = {
  keyValue: 'KeyValue',
  database: 'Database',
  queue: 'Queue',
  bucket: 'Bucket',
};

/** See the file comment. */
export class BindingBroker {
  /** Open transactions and the function that opened each: nobody else may use them. */
  private readonly transactions = new Map<string, string>();

  constructor(
    private readonly registry: Registry,
    private readonly providers: Providers,
  ) {}

  /** Checks and runs one call; throws ERR_BINDING_* for anything the function may not do. */
  async call(scope: BindingScope, req: BindingRequest): Promise<unknown> {
    const binding = scope.bindings[req.binding];
    if (!binding)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${scope.functionName} has no binding named ${req.binding}. Add it to spec.bindings.`,
      );
    if ('secret' in binding)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${req.binding} is a secret; its value is in env.${req.binding}.`,
      );
    const kind = Object.keys(binding)[0] as Kind;
    const shapes = OPS[kind] as Record<string, z.ZodType<unknown[]>>;
    const shape = Object.hasOwn(shapes, req.op) ? shapes[req.op] : undefined;
    if (!shape)
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${RESOURCE_KIND[kind]} bindings have no operation "${req.op}".`,
      );
    const parsed = shape.safeParse(req.args);
    if (!parsed.success)
      throw new KylixError(
        'ERR_BINDING_BAD_ARGUMENTS',
        `env.${req.binding}.${req.op}() was called with arguments of the wrong shape.`,
        issuesToCauses(parsed.error.issues, 'arguments'),
      );
    const ref: ResourceRef = { namespace: scope.namespace, name: (binding as Record<Kind, string>)[kind] };
    if (!(await this.registry.store.get(RESOURCE_KIND[kind], ref.namespace, ref.name))) {
      throw new KylixError(
        'ERR_BINDING_DENIED',
        `${req.binding} is bound to ${RESOURCE_KIND[kind]} "${ref.name}", which does not exist in namespace "${ref.namespace}". Apply it first.`,
      );
    }
    const args = parsed.data;
    const owner = scopedKey(scope.namespace, scope.functionName);
    switch (kind) {
      case 'keyValue': {
        const kv = await this.providers.keyValue();
        if (req.op === 'get') return kv.get(ref, args[0] as string);
        if (req.op === 'put')
          return kv.put(
            ref,
            args[0] as string,
            args[1] as Uint8Array,
            args[2] as { expiration?: number; metadata?: unknown },
          );
        if (req.op === 'delete') return kv.delete(ref, args[0] as string);
        return kv.list(ref, args[0] as { prefix?: string });
      }
      case 'database': {
        const db = await this.providers.database();
        if (req.op === 'query') return db.query(ref, args[0] as { sql: string });
        if (req.op === 'batch') return db.batch(ref, args[0] as { sql: string }[]);
        if (req.op === 'begin') {
          const tx = await db.begin(ref, args[0] as number);
          this.transactions.set(tx, owner);
          return tx;
        }
        const tx = args[0] as string;
        if (this.transactions.get(tx) !== owner)
          throw new KylixError(
            'ERR_BINDING_DENIED',
            'That transaction does not belong to this function (or has ended).',
          );
        if (req.op === 'queryInTransaction') return db.queryInTransaction(tx, args[1] as { sql: string });
        this.transactions.delete(tx);
        return req.op === 'commit' ? db.commit(tx) : db.rollback(tx);
      }
      case 'queue':
        return (await this.providers.queue()).send(
          ref,
          args[0] as { body: Uint8Array; contentType: 'json' }[],
        );
      case 'bucket': {
        const bucket = await this.providers.bucket();
        if (req.op === 'put')
          return bucket.put(ref, args[0] as string, args[1] as Uint8Array, args[2] as object);
        if (req.op === 'head') return bucket.head(ref, args[0] as string);
        if (req.op === 'delete') return bucket.delete(ref, args[0] as string | string[]);
        if (req.op === 'list') return bucket.list(ref, args[0] as object);
        return this.bucketGet(bucket, ref, args[0] as string, args[1] as { range?: { offset: number } });
      }
    }
  }

  /** Reads a whole object (bodies cross the sandbox boundary buffered, for now). */
  private async bucketGet(
    bucket: BucketProvider,
    ref: ResourceRef,
    key: string,
    options: { range?: { offset: number } },
  ): Promise<unknown> {
    const got = await bucket.get(ref, key, options);
    if (!got) return null;
    const chunks: Uint8Array[] = [];
    for await (const c of got.body) chunks.push(c);
    return { object: got.object, range: got.range, body: Buffer.concat(chunks) };
  }
}
