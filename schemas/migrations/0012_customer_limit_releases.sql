-- A cancelled or expired order gives its units back to the customer's per-SKU purchase limit
-- (docs/purchase-path.md, "Per-customer limit"). That count lives in Redis
-- (`<prefix>:{sku}:gate:cust`), the transition in Postgres: two stores, no shared transaction.
-- Until now the gateway lowered the count after the transition committed, so a crash between the
-- two left it high until its TTL (the customer could not buy units they were owed).
--
-- Now the transition writes the release it owes here, in the same transaction as the status
-- change and its outbox row. The gateway carries it out right after the commit and deletes the
-- row; the expiry worker carries out any row left behind (a crash, Redis unavailable). Carrying a
-- release out is idempotent in Redis (a marker per order and SKU, gate-uncount.lua), so running
-- it twice lowers the count once. A Redis rebuild (data lost) recomputes the counts from the
-- orders and settles every row it has accounted for in the same snapshot.
CREATE TABLE IF NOT EXISTS customer_limit_releases (
  order_id    uuid PRIMARY KEY REFERENCES orders(id),
  customer_id text        NOT NULL,
  -- [{"sku": "...", "qty": n}, ...]: the units the order held, per SKU
  items       jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS customer_limit_releases_created_idx ON customer_limit_releases (created_at);
