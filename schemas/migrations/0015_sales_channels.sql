-- Sales channels (docs/channels.md): which locations serve a channel, in what priority, how its
-- purchases are sourced, and how many units are ring-fenced for it.
--
-- A channel's availability is computed by the stream processor from the SKU's rows and this
-- configuration (lib/contracts/channels.ts); the gate sells a channel-scoped purchase from it and
-- the write-back allocates only on the channel's locations, by its sourcing rule.
--
-- Every statement that changes the configuration bumps the one row of sales_channel_config in the
-- same transaction (statement triggers below). That row is captured by Debezium like stock: its
-- change event tells every processor and gateway to reload the configuration, so a change takes
-- effect without a restart, and its version orders configurations (a process never applies an
-- older configuration over a newer one).

CREATE TABLE IF NOT EXISTS sales_channels (
  channel_id      text        PRIMARY KEY,
  name            text        NOT NULL,
  -- priority: the channel's locations in priority order, splitting when one is not enough;
  -- most_stock: most sellable units first; fewest_splits: one location that covers the line
  -- when any does (the highest priority of those), else most_stock; single: only
  -- pickup_location (click and collect), never split.
  sourcing        text        NOT NULL DEFAULT 'priority',
  pickup_location text,
  -- The default ring-fence of every SKU (per-SKU overrides in sales_channel_fences): a number of
  -- units or a percentage of the channel's pooled availability, or none.
  fence_units     int,
  fence_pct       numeric(5, 2),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sales_channels_id_format CHECK (channel_id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  CONSTRAINT sales_channels_sourcing_known CHECK (sourcing IN ('priority', 'most_stock', 'fewest_splits', 'single')),
  CONSTRAINT sales_channels_single_has_pickup CHECK (sourcing <> 'single' OR pickup_location IS NOT NULL),
  CONSTRAINT sales_channels_fence_one_kind CHECK (fence_units IS NULL OR fence_pct IS NULL),
  CONSTRAINT sales_channels_fence_units_range CHECK (fence_units IS NULL OR fence_units >= 0),
  CONSTRAINT sales_channels_fence_pct_range CHECK (fence_pct IS NULL OR (fence_pct >= 0 AND fence_pct <= 100))
);

CREATE TABLE IF NOT EXISTS sales_channel_locations (
  channel_id  text NOT NULL REFERENCES sales_channels (channel_id) ON DELETE CASCADE,
  location_id text NOT NULL,
  -- Lower first.
  priority    int  NOT NULL DEFAULT 0,
  PRIMARY KEY (channel_id, location_id),
  CONSTRAINT sales_channel_locations_location_not_blank CHECK (length(location_id) BETWEEN 1 AND 64)
);

CREATE TABLE IF NOT EXISTS sales_channel_fences (
  channel_id  text NOT NULL REFERENCES sales_channels (channel_id) ON DELETE CASCADE,
  sku         text NOT NULL,
  fence_units int,
  fence_pct   numeric(5, 2),
  PRIMARY KEY (channel_id, sku),
  CONSTRAINT sales_channel_fences_one_kind CHECK ((fence_units IS NULL) <> (fence_pct IS NULL)),
  CONSTRAINT sales_channel_fences_units_range CHECK (fence_units IS NULL OR fence_units >= 0),
  CONSTRAINT sales_channel_fences_pct_range CHECK (fence_pct IS NULL OR (fence_pct >= 0 AND fence_pct <= 100))
);

CREATE TABLE IF NOT EXISTS sales_channel_config (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint  NOT NULL DEFAULT 0
);
INSERT INTO sales_channel_config (id, version) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION sales_channel_config_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE sales_channel_config SET version = version + 1 WHERE id;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS sales_channels_bump ON sales_channels;
CREATE TRIGGER sales_channels_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channels
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();
DROP TRIGGER IF EXISTS sales_channel_locations_bump ON sales_channel_locations;
CREATE TRIGGER sales_channel_locations_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channel_locations
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();
DROP TRIGGER IF EXISTS sales_channel_fences_bump ON sales_channel_fences;
CREATE TRIGGER sales_channel_fences_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channel_fences
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();

-- The channel an order was sold on (NULL: the pooled figure, no channel).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS channel_id text;

-- Debezium captures sales_channel_config (debezium/connectors/stock-cdc.json). Its connector
-- creates the publication on a fresh database; on a database where it already exists, the table
-- is added here so the next change is captured without waiting for the connector to do it.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'invsync_stock_cdc')
     AND NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'invsync_stock_cdc' AND tablename = 'sales_channel_config') THEN
    ALTER PUBLICATION invsync_stock_cdc ADD TABLE sales_channel_config;
  END IF;
END;
$$;
