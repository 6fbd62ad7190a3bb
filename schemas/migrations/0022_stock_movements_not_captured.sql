-- The movement ledger is no longer captured by Debezium (docs/ledger.md#reading-it).
--
-- Capturing stock_movements doubled the change events of every stock change through the
-- connector, Kafka and decoding: commit -> view was about 1.6x at p50 with the ledger on
-- (docs/benchmarks.md). The relay now follows the stock rows' own change events and reads each
-- one's movement by (sku, location, version), which this index serves.

CREATE INDEX IF NOT EXISTS stock_movements_version_idx ON stock_movements (sku, location_id, version);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'invsync_stock_cdc' AND tablename = 'stock_movements') THEN
    ALTER PUBLICATION invsync_stock_cdc DROP TABLE stock_movements;
  END IF;
END;
$$;
