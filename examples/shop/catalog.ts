// The shop's catalog, shared by the functions that import it (each bundle gets its own copy).
export interface Product {
  id: string;
  name: string;
  priceCents: number;
}

export const PRODUCTS: Product[] = [
  { id: 'espresso', name: 'Espresso beans, 1 kg', priceCents: 2490 },
  { id: 'filter', name: 'Filter roast, 500 g', priceCents: 1290 },
  { id: 'grinder', name: 'Hand grinder', priceCents: 8900 },
];
