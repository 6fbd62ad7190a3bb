-- The movement ledger's triggers, typed (docs/ledger.md#cost).
--
-- 0020 handed the transition tables to stock_movements_record as JSON images of the rows and read
-- every figure back out of them: most of the ledger's remaining cost on multi-row statements (an
-- adjustment batch). Here the arrays are of stock_levels rows and the columns are read directly;
-- the statement stays static (planned once per session). What is recorded is unchanged. The
-- buckets include incoming and backordered (migration 0018), which this migration must follow.

CREATE OR REPLACE FUNCTION stock_movements_record(p_old stock_levels[], p_new stock_levels[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  raw    text := current_setting('invsync.movement', true);
  ctx    jsonb := CASE WHEN raw IS NULL OR raw = '' THEN '{}'::jsonb ELSE raw::jsonb END;
  base   jsonb := ctx - 'rows' - 'skus';
  stated boolean := ctx ? 'kind';
  ts     timestamptz := clock_timestamp();
BEGIN
  INSERT INTO stock_movements (
    sku, location_id, kind, reason, source_system, reference, actor, details,
    on_hand_delta, reserved_delta, safety_stock_delta, incoming_delta, backordered_delta,
    on_hand, reserved, safety_stock, incoming, backordered, version, deleted, recorded_at, effective_at)
  SELECT c.sku, c.location_id,
         coalesce(m->>'kind', 'sql'), m->>'reason',
         coalesce(m->>'source', CASE WHEN stated THEN NULL ELSE nullif(current_setting('application_name', true), '') END),
         m->>'reference',
         coalesce(m->>'actor', CASE WHEN stated THEN NULL ELSE session_user::text END),
         m->'details',
         c.on_hand - c.o_on_hand, c.reserved - c.o_reserved, c.safety_stock - c.o_safety_stock,
         c.incoming - c.o_incoming, c.backordered - c.o_backordered,
         c.on_hand, c.reserved, c.safety_stock, c.incoming, c.backordered,
         c.version, c.gone, ts,
         CASE WHEN m ? 'countedAt' THEN to_timestamp((m->>'countedAt')::bigint / 1000.0) ELSE ts END
    FROM (
      SELECT coalesce(n.sku, o.sku) AS sku, coalesce(n.location_id, o.location_id) AS location_id,
             n.sku IS NULL AS gone, coalesce(n.version, o.version) AS version,
             coalesce(n.on_hand, 0) AS on_hand, coalesce(n.reserved, 0) AS reserved, coalesce(n.safety_stock, 0) AS safety_stock,
             coalesce(n.incoming, 0) AS incoming, coalesce(n.backordered, 0) AS backordered,
             coalesce(o.on_hand, 0) AS o_on_hand, coalesce(o.reserved, 0) AS o_reserved, coalesce(o.safety_stock, 0) AS o_safety_stock,
             coalesce(o.incoming, 0) AS o_incoming, coalesce(o.backordered, 0) AS o_backordered
        FROM unnest(p_new) AS n FULL JOIN unnest(p_old) AS o ON o.sku = n.sku AND o.location_id = n.location_id
    ) AS c
   CROSS JOIN LATERAL (
     SELECT CASE WHEN ctx = '{}'::jsonb THEN ctx
                 ELSE base || coalesce(ctx->'skus'->c.sku, '{}'::jsonb) || coalesce(ctx->'rows'->(c.sku || chr(9) || c.location_id), '{}'::jsonb) END AS m
   ) AS mm
   WHERE c.on_hand <> c.o_on_hand OR c.reserved <> c.o_reserved OR c.safety_stock <> c.o_safety_stock
      OR c.incoming <> c.o_incoming OR c.backordered <> c.o_backordered;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record('{}'::stock_levels[], ARRAY(SELECT n::stock_levels FROM stock_new n));
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record(ARRAY(SELECT o::stock_levels FROM stock_old o), ARRAY(SELECT n::stock_levels FROM stock_new n));
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record(ARRAY(SELECT o::stock_levels FROM stock_old o), '{}'::stock_levels[]);
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS stock_levels_movement_insert ON stock_levels;
DROP TRIGGER IF EXISTS stock_levels_movement_update ON stock_levels;
DROP TRIGGER IF EXISTS stock_levels_movement_delete ON stock_levels;
CREATE TRIGGER stock_levels_movement_insert AFTER INSERT ON stock_levels
  REFERENCING NEW TABLE AS stock_new FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_movements_inserted();
CREATE TRIGGER stock_levels_movement_update AFTER UPDATE ON stock_levels
  REFERENCING OLD TABLE AS stock_old NEW TABLE AS stock_new FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_movements_updated();
CREATE TRIGGER stock_levels_movement_delete AFTER DELETE ON stock_levels
  REFERENCING OLD TABLE AS stock_old FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_movements_deleted();
DROP FUNCTION IF EXISTS stock_levels_record_movements();
DROP FUNCTION IF EXISTS stock_movements_record(jsonb[], jsonb[]);
