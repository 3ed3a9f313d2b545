// A Hono app, exactly as it would be written for Cloudflare Workers: Kylix runs it unchanged.
import { Hono } from 'hono';
import { PRODUCTS } from './catalog';

type Bindings = { SHOP_NAME: string };

const app = new Hono<{ Bindings: Bindings }>().basePath('/shop');

app.get('/', (c) =>
  c.json({ shop: c.env.SHOP_NAME, products: `${new URL(c.req.url).origin}/shop/products` }),
);
app.get('/products', (c) => c.json(PRODUCTS));
app.get('/products/:id', (c) => {
  const product = PRODUCTS.find((p) => p.id === c.req.param('id'));
  return product ? c.json(product) : c.json({ error: `no product "${c.req.param('id')}"` }, 404);
});

export default app;
