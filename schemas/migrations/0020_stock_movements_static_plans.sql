-- The movement ledger's triggers (0019) with static SQL (docs/ledger.md#cost).
--
-- 0019 built its INSERT with EXECUTE format(...): planned again at every statement, which for the
-- common single-row write (a purchase's write-back, a plain UPDATE) was most of the ledger's cost.
-- Here each trigger hands its transition tables, as JSON images, to one plpgsql function whose
-- statement is static: planned once per session and cached. What is recorded is unchanged.

CREATE OR REPLACE FUNCTION stock_movements_record(p_old jsonb[], p_new jsonb[]) RETURNS void
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
  SELECT c.r->>'sku', c.r->>'location_id',
         coalesce(m->>'kind', 'sql'), m->>'reason',
         coalesce(m->>'source', CASE WHEN stated THEN NULL ELSE nullif(current_setting('application_name', true), '') END),
         m->>'reference',
         coalesce(m->>'actor', CASE WHEN stated THEN NULL ELSE session_user::text END),
         m->'details',
         c.d_on, c.d_re, c.d_ss, c.d_in, c.d_bo,
         coalesce((c.a->>'on_hand')::int, 0), coalesce((c.a->>'reserved')::int, 0), coalesce((c.a->>'safety_stock')::int, 0),
         coalesce((c.a->>'incoming')::int, 0), coalesce((c.a->>'backordered')::int, 0),
         (c.r->>'version')::bigint, c.gone, ts,
         CASE WHEN m ? 'countedAt' THEN to_timestamp((m->>'countedAt')::bigint / 1000.0) ELSE ts END
    FROM (
      SELECT coalesce(n, o) AS r, n IS NULL AS gone, coalesce(n, '{}'::jsonb) AS a,
             coalesce((n->>'on_hand')::int, 0) - coalesce((o->>'on_hand')::int, 0) AS d_on,
             coalesce((n->>'reserved')::int, 0) - coalesce((o->>'reserved')::int, 0) AS d_re,
             coalesce((n->>'safety_stock')::int, 0) - coalesce((o->>'safety_stock')::int, 0) AS d_ss,
             coalesce((n->>'incoming')::int, 0) - coalesce((o->>'incoming')::int, 0) AS d_in,
             coalesce((n->>'backordered')::int, 0) - coalesce((o->>'backordered')::int, 0) AS d_bo
        FROM unnest(p_new) AS n FULL JOIN unnest(p_old) AS o
          ON o->>'sku' = n->>'sku' AND o->>'location_id' = n->>'location_id'
    ) AS c
   CROSS JOIN LATERAL (
     SELECT base || coalesce(ctx->'skus'->(c.r->>'sku'), '{}'::jsonb)
                 || coalesce(ctx->'rows'->((c.r->>'sku') || chr(9) || (c.r->>'location_id')), '{}'::jsonb) AS m
   ) AS mm
   WHERE c.d_on <> 0 OR c.d_re <> 0 OR c.d_ss <> 0 OR c.d_in <> 0 OR c.d_bo <> 0;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record('{}'::jsonb[], ARRAY(SELECT to_jsonb(n) FROM stock_new n));
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record(ARRAY(SELECT to_jsonb(o) FROM stock_old o), ARRAY(SELECT to_jsonb(n) FROM stock_new n));
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION stock_levels_movements_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stock_movements_record(ARRAY(SELECT to_jsonb(o) FROM stock_old o), '{}'::jsonb[]);
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
