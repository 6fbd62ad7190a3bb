-- Stock alerts (docs/stream-processors.md, "Stock alerts"): the low-stock threshold per SKU and,
-- optionally, per sales channel. A SKU without a row uses ALERT_LOW_STOCK_DEFAULT; a
-- (sku, channel) row overrides the SKU's row (channel '') for that channel. 0 means no low-stock
-- alerts (out of stock and back in stock still fire).
--
-- Thresholds are data, written by the back office with plain SQL; the stream processor reloads
-- the whole table every ALERT_THRESHOLDS_REFRESH_MS. A bad value is refused here, by name, so
-- nothing downstream ever sees one: a negative or absurd threshold, a channel id that is not one.
CREATE TABLE IF NOT EXISTS stock_alert_thresholds (
  sku        text        NOT NULL,
  -- '' is the SKU's row (the pooled figure and every channel without a row of its own); else a
  -- sales channel id, the shape the channels work fixes
  channel    text        NOT NULL DEFAULT '',
  low_stock  integer     NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (sku, channel),
  CONSTRAINT stock_alert_thresholds_low_stock_range CHECK (low_stock BETWEEN 0 AND 1000000000),
  CONSTRAINT stock_alert_thresholds_sku_shape CHECK (length(sku) BETWEEN 1 AND 128 AND sku !~ '[[:cntrl:]]'),
  CONSTRAINT stock_alert_thresholds_channel_shape CHECK (channel = '' OR channel ~ '^[a-z0-9][a-z0-9_.-]{0,63}$')
);
