-- Inbound stock adjustments from WMS/ERP (see ../../docs/connectors.md).
--
-- One row per APPLIED adjustment, inserted in the same transaction as the stock change it made:
-- the primary key on the adjustment id is what makes an adjustment apply exactly once. A
-- redelivered or replayed adjustment finds its row and changes nothing (the stored `result` is
-- reported again); the same id with another payload (`payload_hash`) is refused as a conflict.
-- Refused adjustments are not recorded: they changed nothing, and once their cause is fixed
-- (the SKU added to the catalog, say) the same adjustment may be sent again.
--
-- Not captured by Debezium (the stock-cdc publication lists its tables).

CREATE TABLE IF NOT EXISTS applied_adjustments (
  adjustment_id   text        PRIMARY KEY CHECK (length(adjustment_id) BETWEEN 1 AND 128),
  -- Hash of the adjustment's fields (connectors/inbound/domain/adjustment.ts, adjustmentHash).
  payload_hash    text        NOT NULL,
  sku             text        NOT NULL,
  location_id     text        NOT NULL,
  to_location_id  text,
  kind            text        NOT NULL CHECK (kind IN ('RECEIPT', 'PICK', 'COUNT', 'DAMAGE', 'RETURN', 'TRANSFER')),
  quantity        int         NOT NULL CHECK (quantity >= 0),
  occurred_at     timestamptz NOT NULL,
  source_system   text        NOT NULL,
  reference       text,
  -- How it arrived: 'kafka:<topic>/<partition>@<offset>' or 'http:<API key or token subject>'.
  received_via    text        NOT NULL,
  -- What it did: {"version": <row version after the write>, "locations": [{"locationId", "onHandBefore", "onHandAfter"}]}.
  result          jsonb       NOT NULL,
  applied_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- "What happened to this SKU" and pruning by age.
CREATE INDEX IF NOT EXISTS applied_adjustments_sku_idx ON applied_adjustments (sku, applied_at);
CREATE INDEX IF NOT EXISTS applied_adjustments_applied_at_idx ON applied_adjustments (applied_at);
