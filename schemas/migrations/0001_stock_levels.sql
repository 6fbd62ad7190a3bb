-- Stock levels: the system of record for stock (see ../../docs/data-model.md).
--
-- `version` comes from one global sequence and is assigned by a trigger on every insert and
-- update, whatever the writer sets. A global sequence (rather than OLD.version + 1) keeps a row's
-- version increasing even across a delete and re-insert, and makes max(version) over a SKU's
-- locations a valid per-SKU version as well. BEFORE ROW triggers run after the row lock is taken,
-- so two writers of one row get versions in commit order.

CREATE SEQUENCE IF NOT EXISTS stock_version_seq AS bigint;

CREATE TABLE IF NOT EXISTS stock_levels (
  sku           text        NOT NULL,
  location_id   text        NOT NULL,
  on_hand       int         NOT NULL DEFAULT 0,
  reserved      int         NOT NULL DEFAULT 0,
  safety_stock  int         NOT NULL DEFAULT 0,
  version       bigint      NOT NULL, -- set by the trigger below
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sku, location_id),
  CONSTRAINT stock_levels_sku_not_blank CHECK (length(sku) BETWEEN 1 AND 128),
  CONSTRAINT stock_levels_location_not_blank CHECK (length(location_id) BETWEEN 1 AND 64),
  CONSTRAINT stock_levels_on_hand_nonneg CHECK (on_hand >= 0),
  CONSTRAINT stock_levels_reserved_nonneg CHECK (reserved >= 0),
  CONSTRAINT stock_levels_safety_nonneg CHECK (safety_stock >= 0)
);

CREATE OR REPLACE FUNCTION stock_levels_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := nextval('stock_version_seq');
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS stock_levels_version ON stock_levels;
CREATE TRIGGER stock_levels_version
  BEFORE INSERT OR UPDATE ON stock_levels
  FOR EACH ROW EXECUTE FUNCTION stock_levels_bump_version();

-- Readers that aggregate a SKU across locations.
CREATE INDEX IF NOT EXISTS stock_levels_version_idx ON stock_levels (version);
