-- Per-SKU serialisation without the shared lock table.
--
-- Migration 0005 took a transaction-scoped advisory lock per SKU. Advisory locks live in
-- Postgres' shared lock table (max_locks_per_transaction x max_connections slots), so one
-- transaction touching tens of thousands of SKUs — an ERP batch, a bulk load — failed with
-- "out of shared memory". Row locks are kept in the tuples themselves and have no such limit:
-- the trigger now locks the SKU's row in stock_sku_locks (created on first use), which gives the
-- same guarantee — writers of one SKU are serialised until commit, so per SKU version order is
-- commit order — for any number of SKUs per transaction.

CREATE TABLE IF NOT EXISTS stock_sku_locks (
  sku text PRIMARY KEY
);

CREATE OR REPLACE FUNCTION stock_levels_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Lock (creating it if needed) the SKU's lock row: held until this transaction ends.
  PERFORM 1 FROM stock_sku_locks WHERE sku = NEW.sku FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO stock_sku_locks (sku) VALUES (NEW.sku) ON CONFLICT (sku) DO NOTHING;
    PERFORM 1 FROM stock_sku_locks WHERE sku = NEW.sku FOR UPDATE;
  END IF;
  NEW.version := nextval('stock_version_seq');
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END;
$$;

INSERT INTO stock_sku_locks (sku) SELECT DISTINCT sku FROM stock_levels ON CONFLICT DO NOTHING;
