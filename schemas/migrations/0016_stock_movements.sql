-- The movement ledger (docs/ledger.md): one row per committed change of a stock_levels row, with
-- what moved in each bucket, what the row holds after it, its version, and why it moved.
--
-- Written by an AFTER ROW trigger on stock_levels, so it is in the same transaction as the change:
-- a rolled-back change leaves no movement, a committed one always has its movement, and writers
-- that bypass the API (plain SQL from a back office or an ERP batch) are recorded like the rest.
-- Debezium captures the table (debezium/connectors/stock-cdc.json) and the connectors publish it
-- as Avro StockMovement on `stock.movements`; `GET /v1/movements` and `npm run inspect -- explain`
-- read it here.
--
-- Why it moved comes from the writer: a transaction may set `invsync.movement` (set_config(...,
-- true): transaction-local) to a JSON object {kind, reason, source, reference, actor, details,
-- countedAt, skus, rows}; `skus` maps a SKU and `rows` maps `<sku>\t<location>` to fields that
-- override the others for that SKU / row (a batch of adjustments or holds touching several rows). A write with no context is kind `sql`,
-- its actor the database user and its source the session's application_name.
--
-- Buckets: on_hand, reserved, safety_stock, and incoming / backordered when stock_levels has those
-- columns (read through to_jsonb, so a later migration adding them needs no change here).
-- A change that moves no bucket (a delete re-stamping a SKU's other rows, migration 0004) is not a
-- movement. Invariant, checked by tests/ledger.int.test.ts: for every row, its baseline (below)
-- plus the sum of its movements' deltas equals its current figures.

CREATE TABLE IF NOT EXISTS stock_movements (
  movement_id         bigserial   PRIMARY KEY,
  sku                 text        NOT NULL,
  location_id         text        NOT NULL,
  -- adjustment | reserve | resize | confirm | cancel | expire | receive | sql | resync | ...
  kind                text        NOT NULL,
  -- e.g. the adjustment kind (RECEIPT, COUNT, ...) of an adjustment
  reason              text,
  source_system       text,
  -- the document behind it: an adjustment's reference, `order:<id>`, an ASN
  reference           text,
  actor               text,
  details             jsonb,
  on_hand_delta       int         NOT NULL,
  reserved_delta      int         NOT NULL,
  safety_stock_delta  int         NOT NULL,
  incoming_delta      int         NOT NULL DEFAULT 0,
  backordered_delta   int         NOT NULL DEFAULT 0,
  on_hand             int         NOT NULL,
  reserved            int         NOT NULL,
  safety_stock        int         NOT NULL,
  incoming            int         NOT NULL DEFAULT 0,
  backordered         int         NOT NULL DEFAULT 0,
  -- the row's version after the change (a delete: the version of the row it removed)
  version             bigint      NOT NULL,
  deleted             boolean     NOT NULL DEFAULT false,
  txid                bigint      NOT NULL DEFAULT txid_current(),
  recorded_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- when the movement took effect: recorded_at, or for a dated count the time it was counted
  effective_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- "How did this row get here" (explain, dated counts) and "what moved between" (the API's paging).
CREATE INDEX IF NOT EXISTS stock_movements_row_idx ON stock_movements (sku, location_id, effective_at);
CREATE INDEX IF NOT EXISTS stock_movements_recorded_idx ON stock_movements (recorded_at, movement_id);

-- What the ledger does not itemise: the rows' figures when the ledger started, plus every
-- movement pruned since (housekeeping folds them in). Baseline + sum(movements) = current figures.
CREATE TABLE IF NOT EXISTS stock_movement_baselines (
  sku           text        NOT NULL,
  location_id   text        NOT NULL,
  on_hand       bigint      NOT NULL DEFAULT 0,
  reserved      bigint      NOT NULL DEFAULT 0,
  safety_stock  bigint      NOT NULL DEFAULT 0,
  incoming      bigint      NOT NULL DEFAULT 0,
  backordered   bigint      NOT NULL DEFAULT 0,
  through_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (sku, location_id)
);

-- The ledger's horizon: movements that took effect before it are not itemised (the ledger did not
-- exist yet, or they were pruned). A dated count older than the horizon cannot be replayed.
CREATE TABLE IF NOT EXISTS stock_movement_horizon (
  id       boolean     PRIMARY KEY DEFAULT true CHECK (id),
  horizon  timestamptz NOT NULL
);
INSERT INTO stock_movement_horizon (id, horizon) VALUES (true, clock_timestamp()) ON CONFLICT (id) DO NOTHING;

-- Rows that existed before the ledger start from their figures then.
INSERT INTO stock_movement_baselines (sku, location_id, on_hand, reserved, safety_stock)
SELECT sku, location_id, on_hand, reserved, safety_stock FROM stock_levels
ON CONFLICT (sku, location_id) DO NOTHING;

CREATE OR REPLACE FUNCTION stock_levels_record_movement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  o    jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
  n    jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
  r    jsonb := CASE WHEN TG_OP = 'DELETE' THEN o ELSE n END;
  d_on int := coalesce((n->>'on_hand')::int, 0) - coalesce((o->>'on_hand')::int, 0);
  d_re int := coalesce((n->>'reserved')::int, 0) - coalesce((o->>'reserved')::int, 0);
  d_ss int := coalesce((n->>'safety_stock')::int, 0) - coalesce((o->>'safety_stock')::int, 0);
  d_in int := coalesce((n->>'incoming')::int, 0) - coalesce((o->>'incoming')::int, 0);
  d_bo int := coalesce((n->>'backordered')::int, 0) - coalesce((o->>'backordered')::int, 0);
  raw  text;
  ctx  jsonb := '{}'::jsonb;
  now_ts timestamptz := clock_timestamp();
BEGIN
  IF d_on = 0 AND d_re = 0 AND d_ss = 0 AND d_in = 0 AND d_bo = 0 THEN
    RETURN NULL;
  END IF;
  raw := current_setting('invsync.movement', true);
  IF raw IS NOT NULL AND raw <> '' THEN
    ctx := raw::jsonb;
    ctx := (ctx - 'rows' - 'skus') || coalesce(ctx->'skus'->(r->>'sku'), '{}'::jsonb)
           || coalesce(ctx->'rows'->((r->>'sku') || chr(9) || (r->>'location_id')), '{}'::jsonb);
  END IF;
  INSERT INTO stock_movements (
    sku, location_id, kind, reason, source_system, reference, actor, details,
    on_hand_delta, reserved_delta, safety_stock_delta, incoming_delta, backordered_delta,
    on_hand, reserved, safety_stock, incoming, backordered, version, deleted, recorded_at, effective_at)
  VALUES (
    r->>'sku', r->>'location_id',
    coalesce(ctx->>'kind', 'sql'),
    ctx->>'reason',
    coalesce(ctx->>'source', CASE WHEN ctx ? 'kind' THEN NULL ELSE nullif(current_setting('application_name', true), '') END),
    ctx->>'reference',
    coalesce(ctx->>'actor', CASE WHEN ctx ? 'kind' THEN NULL ELSE session_user::text END),
    ctx->'details',
    d_on, d_re, d_ss, d_in, d_bo,
    coalesce((n->>'on_hand')::int, 0), coalesce((n->>'reserved')::int, 0), coalesce((n->>'safety_stock')::int, 0),
    coalesce((n->>'incoming')::int, 0), coalesce((n->>'backordered')::int, 0),
    (r->>'version')::bigint, TG_OP = 'DELETE', now_ts,
    CASE WHEN ctx ? 'countedAt' THEN to_timestamp((ctx->>'countedAt')::bigint / 1000.0) ELSE now_ts END);
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS stock_levels_movement ON stock_levels;
CREATE TRIGGER stock_levels_movement
  AFTER INSERT OR UPDATE OR DELETE ON stock_levels
  FOR EACH ROW EXECUTE FUNCTION stock_levels_record_movement();

-- Pruning (lib/housekeeping.ts): folds up to p_limit movements that took effect before
-- now - p_older_than into the rows' baselines, deletes them and moves the horizon up to the
-- newest one folded. Returns how many were pruned. Serialised with itself by a lock on the
-- horizon row (one housekeeper at a time).
CREATE OR REPLACE FUNCTION stock_movements_prune(p_older_than interval, p_limit int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n      bigint;
  newest timestamptz;
BEGIN
  PERFORM 1 FROM stock_movement_horizon WHERE id FOR UPDATE;
  WITH gone AS (
    DELETE FROM stock_movements WHERE movement_id IN (
      SELECT movement_id FROM stock_movements
       WHERE recorded_at < clock_timestamp() - p_older_than AND effective_at < clock_timestamp() - p_older_than
       ORDER BY recorded_at, movement_id LIMIT p_limit)
    RETURNING *
  ), folded AS (
    INSERT INTO stock_movement_baselines AS b (sku, location_id, on_hand, reserved, safety_stock, incoming, backordered, through_at)
    SELECT sku, location_id, sum(on_hand_delta), sum(reserved_delta), sum(safety_stock_delta), sum(incoming_delta), sum(backordered_delta), max(effective_at)
      FROM gone GROUP BY sku, location_id
    ON CONFLICT (sku, location_id) DO UPDATE
      SET on_hand = b.on_hand + excluded.on_hand, reserved = b.reserved + excluded.reserved,
          safety_stock = b.safety_stock + excluded.safety_stock, incoming = b.incoming + excluded.incoming,
          backordered = b.backordered + excluded.backordered, through_at = greatest(b.through_at, excluded.through_at)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM gone), (SELECT max(greatest(recorded_at, effective_at)) FROM gone) INTO n, newest;
  IF newest IS NOT NULL THEN
    UPDATE stock_movement_horizon SET horizon = greatest(horizon, newest) WHERE id;
  END IF;
  RETURN n;
END;
$$;

-- The ledger's own check and repair: for every row whose baseline plus movements differs from its
-- current figures (the trigger was disabled for a while, say), one `resync` movement with the
-- difference, so the ledger explains the figures again and says where it could not. Returns how
-- many rows it resynced. `stock_ledger_drift` is the read-only half.
CREATE OR REPLACE VIEW stock_ledger_drift AS
WITH cur AS (
  SELECT sku, location_id, on_hand::bigint AS on_hand, reserved::bigint AS reserved, safety_stock::bigint AS safety_stock,
         coalesce((to_jsonb(s)->>'incoming')::bigint, 0) AS incoming, coalesce((to_jsonb(s)->>'backordered')::bigint, 0) AS backordered
    FROM stock_levels s
), led AS (
  SELECT sku, location_id, sum(on_hand) AS on_hand, sum(reserved) AS reserved, sum(safety_stock) AS safety_stock,
         sum(incoming) AS incoming, sum(backordered) AS backordered
    FROM (SELECT sku, location_id, on_hand, reserved, safety_stock, incoming, backordered FROM stock_movement_baselines
          UNION ALL
          SELECT sku, location_id, on_hand_delta, reserved_delta, safety_stock_delta, incoming_delta, backordered_delta FROM stock_movements) AS x
   GROUP BY sku, location_id
)
SELECT coalesce(c.sku, l.sku) AS sku, coalesce(c.location_id, l.location_id) AS location_id,
       coalesce(c.on_hand, 0) - coalesce(l.on_hand, 0) AS on_hand, coalesce(c.reserved, 0) - coalesce(l.reserved, 0) AS reserved,
       coalesce(c.safety_stock, 0) - coalesce(l.safety_stock, 0) AS safety_stock, coalesce(c.incoming, 0) - coalesce(l.incoming, 0) AS incoming,
       coalesce(c.backordered, 0) - coalesce(l.backordered, 0) AS backordered
  FROM cur c FULL JOIN led l ON c.sku = l.sku AND c.location_id = l.location_id
 WHERE coalesce(c.on_hand, 0) <> coalesce(l.on_hand, 0) OR coalesce(c.reserved, 0) <> coalesce(l.reserved, 0)
    OR coalesce(c.safety_stock, 0) <> coalesce(l.safety_stock, 0) OR coalesce(c.incoming, 0) <> coalesce(l.incoming, 0)
    OR coalesce(c.backordered, 0) <> coalesce(l.backordered, 0);

CREATE OR REPLACE FUNCTION stock_ledger_resync(p_reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  WITH d AS (SELECT * FROM stock_ledger_drift), ins AS (
    INSERT INTO stock_movements (sku, location_id, kind, reason, actor, on_hand_delta, reserved_delta, safety_stock_delta, incoming_delta, backordered_delta,
                                 on_hand, reserved, safety_stock, incoming, backordered, version, deleted)
    SELECT d.sku, d.location_id, 'resync', p_reason, session_user::text, d.on_hand, d.reserved, d.safety_stock, d.incoming, d.backordered,
           coalesce(s.on_hand, 0), coalesce(s.reserved, 0), coalesce(s.safety_stock, 0),
           coalesce((to_jsonb(s)->>'incoming')::int, 0), coalesce((to_jsonb(s)->>'backordered')::int, 0), coalesce(s.version, 0), s.sku IS NULL
      FROM d LEFT JOIN stock_levels s ON s.sku = d.sku AND s.location_id = d.location_id
    RETURNING 1
  )
  SELECT count(*) INTO n FROM ins;
  RETURN n;
END;
$$;

-- Debezium captures stock_movements (debezium/connectors/stock-cdc.json); as in 0015, a database
-- whose publication exists already gets the table now.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'invsync_stock_cdc')
     AND NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'invsync_stock_cdc' AND tablename = 'stock_movements') THEN
    ALTER PUBLICATION invsync_stock_cdc ADD TABLE stock_movements;
  END IF;
END;
$$;
