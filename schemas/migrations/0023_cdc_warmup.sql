-- cdc_warmup: plumbing for a warm start (issue 16, docs/operations.md#cold-start).
--
-- Right after Kafka Connect starts, Debezium is slow per change until its JVM has decoded and
-- converted some thousands of changes (measured: commit -> CDC topic 1-4 s for the first changes
-- of stock rows, tens of ms later). A warm-up through the narrow cdc_heartbeat row left the first
-- stock rows about 1 s slow in one of two runs, so the warm-up uses rows of the same shape. `stack up` rewrites these rows, which have the columns
-- and replica identity of stock_levels but none of its triggers, until probes are fast. They go to
-- their own topic (cdc.public.cdc_warmup), which no consumer reads; nothing else writes here.

CREATE TABLE IF NOT EXISTS cdc_warmup (LIKE stock_levels INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE cdc_warmup ALTER COLUMN version SET DEFAULT 1;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'cdc_warmup'::regclass AND contype = 'p') THEN
    ALTER TABLE cdc_warmup ADD PRIMARY KEY (sku, location_id);
  END IF;
END;
$$;
ALTER TABLE cdc_warmup REPLICA IDENTITY FULL;

INSERT INTO cdc_warmup (sku, location_id, on_hand, reserved, safety_stock, version, incoming, next_eta)
SELECT 'WARMUP-' || lpad(n::text, 4, '0'), 'WARMUP', n % 500, n % 7, n % 3, 1, n % 11, CASE WHEN n % 5 = 0 THEN now() + interval '7 days' END
FROM generate_series(1, 2000) n
ON CONFLICT DO NOTHING;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'invsync_stock_cdc')
     AND NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'invsync_stock_cdc' AND tablename = 'cdc_warmup') THEN
    ALTER PUBLICATION invsync_stock_cdc ADD TABLE cdc_warmup;
  END IF;
END;
$$;
