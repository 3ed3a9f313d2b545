CREATE TABLE orders (
  id         bigserial PRIMARY KEY,
  status     text NOT NULL DEFAULT 'placed',
  total_cents integer NOT NULL,
  lines      jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
