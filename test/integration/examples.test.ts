/**
 * The examples a newcomer copies must work as the README says.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { apply, startNode, type TestNode } from '../helpers/platform.js';

const example = (name: string) => fileURLToPath(new URL(`../../examples/${name}/`, import.meta.url));

describe('examples', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node.destroy();
  });

  it('hello greets', async () => {
    assert.ok((await apply(node, example('hello'))).ok);
    const res = await fetch(node.url('/hello?name=newcomer'));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Hello, newcomer!\n');
  });

  it('shop runs a Hono app unchanged, beside plain fetch handlers', async () => {
    const { ok, applied } = await apply(node, example('shop'));
    assert.ok(ok);
    assert.deepEqual(
      applied
        .filter((a) => a.kind === 'Function')
        .map((a) => a.name)
        .sort(),
      ['echo', 'orders', 'quote', 'storefront'],
    );
    const product = (await (await fetch(node.url('/shop/products/grinder'))).json()) as {
      priceCents: number;
    };
    assert.equal(product.priceCents, 8900);
    assert.equal((await fetch(node.url('/shop/products/nope'))).status, 404);
    const quote = (await (
      await fetch(node.url('/shop/quote'), {
        method: 'POST',
        body: JSON.stringify({ items: [{ id: 'espresso', quantity: 2 }] }),
      })
    ).json()) as { totalCents: number; currency: string };
    assert.deepEqual(quote, { currency: 'EUR', netCents: 4980, taxCents: 946, totalCents: 5926 });
    assert.equal(
      await (await fetch(node.url('/shop/echo/x'), { method: 'POST', body: 'stream me' })).text(),
      'STREAM ME',
    );
  });
});
