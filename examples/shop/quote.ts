// A plain fetch handler: prices a basket posted as JSON.
import { PRODUCTS } from './catalog';

interface Env {
  TAX_RATE: string;
  CURRENCY: string;
}

interface Line {
  id: string;
  quantity: number;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    let lines: Line[];
    try {
      lines = ((await request.json()) as { items?: Line[] }).items ?? [];
    } catch {
      return Response.json(
        { error: 'send JSON: { "items": [{ "id": "espresso", "quantity": 2 }] }' },
        { status: 400 },
      );
    }
    let net = 0;
    for (const line of lines) {
      const product = PRODUCTS.find((p) => p.id === line.id);
      if (!product) return Response.json({ error: `no product "${line.id}"` }, { status: 422 });
      net += product.priceCents * Math.max(0, Math.floor(line.quantity));
    }
    const tax = Math.round(net * Number(env.TAX_RATE));
    console.log(`quoted ${lines.length} lines: ${net + tax} cents`);
    return Response.json({ currency: env.CURRENCY, netCents: net, taxCents: tax, totalCents: net + tax });
  },
};
