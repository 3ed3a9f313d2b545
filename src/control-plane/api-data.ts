/**
 * Operator access to the data behind resources, for `kylix kv`, `kylix sql`, `kylix queue` and
 * `kylix bucket`: subresources of the resource objects, each checking the object exists first.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { healthOf, type ResourceRef } from '../bindings/provider.js';
import { ALL_BINDING_KINDS, type Providers } from '../bindings/registry.js';
import { KylixError, quoteInput } from '../errors.js';
import type { BindingResourceKind } from '../resources/binding-kinds.js';
import { KINDS } from '../resources/kinds.js';
import { API_VERSION, DNS_LABEL_RULE, isDnsLabel } from '../resources/meta.js';
import { parseBody, readBodyBytes } from './api-input.js';
import type { Registry } from './registry.js';

const PREFIX = `/apis/${API_VERSION}/namespaces/:ns`;

/** The resource the URL names, after checking it exists. */
async function refOf(registry: Registry, c: Context, kind: BindingResourceKind): Promise<ResourceRef> {
  const { ns, name } = c.req.param() as { ns: string; name: string };
  await registry.get(kind, ns, name);
  return { namespace: ns, name };
}

/** The key or object path after `marker` in the raw URL, decoded ("a/b c" stays one key). */
function tail(c: Context, marker: string): string {
  const path = new URL(c.req.url).pathname;
  const i = path.indexOf(marker);
  try {
    return decodeURIComponent(path.slice(i + marker.length));
  } catch {
    throw new KylixError('ERR_BAD_REQUEST', 'The key in the URL is not valid percent-encoded UTF-8.');
  }
}

async function json<T>(c: Context): Promise<T> {
  return (parseBody((await readBodyBytes(c)).toString('utf8'), 'json') ?? {}) as T;
}

/** Adds the data routes to the API app. */
export function addDataRoutes(
  app: Hono<{ Bindings: HttpBindings }>,
  registry: Registry,
  providers: Providers,
): void {
  // Health of the backend behind a resource, checked now (for `kylix describe`), for every kind.
  for (const kind of ALL_BINDING_KINDS) {
    app.get(`${PREFIX}/${KINDS[kind.resourceKind]!.plural}/:name/health`, async (c) => {
      await refOf(registry, c, kind.resourceKind);
      const p = await providers[kind.name]();
      return c.json({ backend: p.name, ...(await healthOf(p)) });
    });
  }

  // KeyValue: list, get, put, delete.
  app.get(`${PREFIX}/keyvalues/:name/keys`, async (c) => {
    const ref = await refOf(registry, c, 'KeyValue');
    const limit = c.req.query('limit');
    return c.json(
      await (await providers.keyValue()).list(ref, {
        prefix: c.req.query('prefix'),
        cursor: c.req.query('cursor'),
        ...(limit ? { limit: Number(limit) } : {}),
      }),
    );
  });
  app.get(`${PREFIX}/keyvalues/:name/keys/*`, async (c) => {
    const ref = await refOf(registry, c, 'KeyValue');
    const key = tail(c, '/keys/');
    const entry = await (await providers.keyValue()).get(ref, key);
    if (!entry)
      throw new KylixError('ERR_NOT_FOUND', `Key ${quoteInput(key)} not found in KeyValue "${ref.name}".`);
    return c.body(Buffer.from(entry.value), 200, {
      'content-type': 'application/octet-stream',
      ...(entry.expiration ? { 'kylix-expiration': String(entry.expiration) } : {}),
    });
  });
  app.put(`${PREFIX}/keyvalues/:name/keys/*`, async (c) => {
    const ref = await refOf(registry, c, 'KeyValue');
    const ttl = c.req.query('ttl');
    const expiration = ttl ? Math.floor(Date.now() / 1000) + Number(ttl) : undefined;
    await (await providers.keyValue()).put(
      ref,
      tail(c, '/keys/'),
      new Uint8Array(await c.req.arrayBuffer()),
      expiration ? { expiration } : {},
    );
    return c.body(null, 204);
  });
  app.delete(`${PREFIX}/keyvalues/:name/keys/*`, async (c) => {
    const ref = await refOf(registry, c, 'KeyValue');
    await (await providers.keyValue()).delete(ref, tail(c, '/keys/'));
    return c.body(null, 204);
  });

  // Database: one statement, with parameters.
  app.post(`${PREFIX}/databases/:name/query`, async (c) => {
    const ref = await refOf(registry, c, 'Database');
    const body = await json<{ sql?: string; params?: unknown[] }>(c);
    if (!body.sql) throw new KylixError('ERR_BAD_REQUEST', 'Send { "sql": "…", "params": [] }.');
    return c.json(
      await (await providers.database()).query(ref, { sql: body.sql, params: body.params ?? [] }),
    );
  });

  // Queue: send, stats, peek, redrive.
  app.post(`${PREFIX}/queues/:name/messages`, async (c) => {
    const ref = await refOf(registry, c, 'Queue');
    const body = await json<{ body?: unknown; delaySeconds?: number }>(c);
    await (await providers.queue()).send(ref, [
      {
        body: new TextEncoder().encode(JSON.stringify(body.body ?? null)),
        contentType: 'json',
        ...(body.delaySeconds ? { delaySeconds: body.delaySeconds } : {}),
      },
    ]);
    return c.body(null, 204);
  });
  app.get(`${PREFIX}/queues/:name/stats`, async (c) =>
    c.json(await (await providers.queue()).stats(await refOf(registry, c, 'Queue'))),
  );
  app.get(`${PREFIX}/queues/:name/messages`, async (c) => {
    const ref = await refOf(registry, c, 'Queue');
    const messages = await (await providers.queue()).peek(ref, Number(c.req.query('limit') ?? 50));
    return c.json({ messages: messages.map((m) => ({ ...m, body: Buffer.from(m.body).toString('utf8') })) });
  });
  app.post(`${PREFIX}/queues/:name/redrive`, async (c) => {
    const from = await refOf(registry, c, 'Queue');
    const { to } = await json<{ to?: string }>(c);
    if (!to) throw new KylixError('ERR_BAD_REQUEST', 'Send { "to": "<queue name>" }.');
    if (!isDnsLabel(to))
      throw new KylixError('ERR_BAD_REQUEST', `The queue name ${quoteInput(to)} is not valid.`, [
        { field: 'to', message: DNS_LABEL_RULE },
      ]);
    await registry.get('Queue', from.namespace, to);
    const queue = await providers.queue();
    let moved = 0;
    // Each message is sent to the target before it is acked here: a crash duplicates, never loses.
    for (;;) {
      const batch = await queue.receive(from, { max: 100, leaseMs: 30_000, waitMs: 0 });
      if (batch.length === 0) break;
      await queue.send(
        { namespace: from.namespace, name: to },
        batch.map((d) => ({ body: d.body, contentType: d.contentType })),
      );
      await queue.ack(
        from,
        batch.map((d) => d.leaseId),
      );
      moved += batch.length;
    }
    return c.json({ moved });
  });

  // Bucket: list, get, put, delete.
  app.get(`${PREFIX}/buckets/:name/objects`, async (c) => {
    const ref = await refOf(registry, c, 'Bucket');
    return c.json(
      await (await providers.bucket()).list(ref, {
        prefix: c.req.query('prefix'),
        delimiter: c.req.query('delimiter'),
        cursor: c.req.query('cursor'),
      }),
    );
  });
  app.get(`${PREFIX}/buckets/:name/objects/*`, async (c) => {
    const ref = await refOf(registry, c, 'Bucket');
    const key = tail(c, '/objects/');
    const got = await (await providers.bucket()).get(ref, key);
    if (!got)
      throw new KylixError('ERR_NOT_FOUND', `Object ${quoteInput(key)} not found in Bucket "${ref.name}".`);
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        for await (const chunk of got.body ?? []) controller.enqueue(chunk);
        controller.close();
      },
    });
    return c.body(stream, 200, {
      'content-type': got.object.httpMetadata.contentType ?? 'application/octet-stream',
      etag: `"${got.object.etag}"`,
    });
  });
  app.put(`${PREFIX}/buckets/:name/objects/*`, async (c) => {
    const ref = await refOf(registry, c, 'Bucket');
    const contentType = c.req.header('content-type');
    const object = await (await providers.bucket()).put(
      ref,
      tail(c, '/objects/'),
      new Uint8Array(await c.req.arrayBuffer()),
      contentType ? { httpMetadata: { contentType } } : {},
    );
    return c.json(object, 201);
  });
  app.delete(`${PREFIX}/buckets/:name/objects/*`, async (c) => {
    const ref = await refOf(registry, c, 'Bucket');
    const key = tail(c, '/objects/');
    const provider = await providers.bucket();
    // As kubectl delete: a key that is not there is an error the caller sees.
    if (!(await provider.head(ref, key)))
      throw new KylixError('ERR_NOT_FOUND', `Object ${quoteInput(key)} not found in Bucket "${ref.name}".`);
    await provider.delete(ref, key);
    return c.body(null, 204);
  });
}
