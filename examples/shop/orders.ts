// Orders: every binding kind in one Workers-style module. The same code runs on embedded backends
// and on PostgreSQL, Redis, NATS and S3: only the installation's config changes.
import { PRODUCTS } from './catalog';

interface Sql {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;
  transaction<T>(fn: (tx: { query: Sql['query'] }) => Promise<T>): Promise<T>;
}
interface Env {
  DB: Sql;
  CACHE: {
    get(key: string, type: 'json'): Promise<unknown>;
    put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>;
  };
  EVENTS: { send(body: unknown): Promise<void> };
  FILES: {
    put(key: string, value: string, options?: object): Promise<unknown>;
    get(key: string): Promise<{ text(): Promise<string> } | null>;
  };
  STRIPE: string;
}
interface Message {
  body: { orderId: string };
  ack(): void;
  retry(): void;
}

async function sign(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(text));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const [, , , id, sub] = url.pathname.split('/'); // /shop/orders/:id/:sub

    if (request.method === 'POST' && !id) {
      const { items = [] } = (await request.json()) as { items?: { id: string; quantity: number }[] };
      const lines = items.map((i) => ({ ...i, product: PRODUCTS.find((p) => p.id === i.id) }));
      if (lines.length === 0 || lines.some((l) => !l.product))
        return Response.json({ error: 'unknown or no products' }, { status: 422 });
      const total = lines.reduce((n, l) => n + (l.product?.priceCents ?? 0) * l.quantity, 0);
      const order = await env.DB.transaction(async (tx) => {
        const { rows } = await tx.query(
          'INSERT INTO orders (total_cents, lines) VALUES ($1, $2) RETURNING id::text AS id, status',
          [total, JSON.stringify(items)],
        );
        return rows[0] as { id: string; status: string };
      });
      const invoice = `Invoice ${order.id}: ${total} cents\n`;
      await env.FILES.put(`invoices/${order.id}.txt`, invoice, {
        httpMetadata: { contentType: 'text/plain' },
      });
      await env.CACHE.put(`order:${order.id}`, JSON.stringify({ ...order, total_cents: total }), {
        expirationTtl: 300,
      });
      await env.EVENTS.send({ orderId: order.id });
      return Response.json(
        { id: order.id, totalCents: total, signature: await sign(env.STRIPE, invoice) },
        { status: 201 },
      );
    }
    if (id && sub === 'invoice') {
      const object = await env.FILES.get(`invoices/${id}.txt`);
      return object ? new Response(await object.text()) : new Response('no invoice\n', { status: 404 });
    }
    if (id) {
      const cached = await env.CACHE.get(`order:${id}`, 'json');
      const { rows } = await env.DB.query(
        'SELECT id::text AS id, status, total_cents FROM orders WHERE id = $1',
        [id],
      );
      if (!rows[0]) return Response.json({ error: 'no such order' }, { status: 404 });
      return Response.json({ ...rows[0], cached: cached !== null });
    }
    const { rows } = await env.DB.query(
      'SELECT status, count(*)::int AS n FROM orders GROUP BY status ORDER BY status',
    );
    return Response.json(rows);
  },

  // Order events: confirm each order; a message whose order is missing is retried, then dead-lettered.
  async queue(batch: { messages: Message[] }, env: Env): Promise<void> {
    for (const message of batch.messages) {
      const { rowCount } = await env.DB.query("UPDATE orders SET status = 'confirmed' WHERE id = $1", [
        message.body.orderId,
      ]);
      if (rowCount === 1) message.ack();
      else message.retry();
    }
  },

  // Every five minutes: a summary for the dashboard, kept in the cache.
  async scheduled(event: { scheduledTime: number }, env: Env): Promise<void> {
    const { rows } = await env.DB.query('SELECT status, count(*)::int AS n FROM orders GROUP BY status');
    await env.CACHE.put('report:latest', JSON.stringify({ at: event.scheduledTime, rows }));
  },
};
