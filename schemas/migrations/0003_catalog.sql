-- Catalog: the SKUs and locations the platform knows. Stock rows do not reference them with
-- foreign keys on purpose: an ERP batch may load stock before the catalog, and the brief lets
-- any system with database rights write stock_levels. Inbound adjustments check these tables.

CREATE TABLE IF NOT EXISTS products (
  sku         text        PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 128),
  name        text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS locations (
  location_id text        PRIMARY KEY CHECK (length(location_id) BETWEEN 1 AND 64),
  name        text        NOT NULL,
  kind        text        NOT NULL DEFAULT 'warehouse' CHECK (kind IN ('warehouse', 'store', 'dropship')),
  created_at  timestamptz NOT NULL DEFAULT now()
);
