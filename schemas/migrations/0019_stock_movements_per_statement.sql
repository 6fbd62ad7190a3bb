-- The movement ledger's trigger (0016), per statement instead of per row (docs/ledger.md).
--
-- The row trigger parsed the writer's context (`invsync.movement`) and built two JSON images for
-- every row; a batch of 50 adjustments parsed its 50-row context 50 times. This one runs once per
-- statement over its transition tables: the context is parsed once, the movements are one
-- INSERT ... SELECT. What is recorded is unchanged (same columns, same rules, same context).
-- INSERT ... ON CONFLICT DO UPDATE fires both the insert and the update trigger, each with its rows.

CREATE OR REPLACE FUNCTION stock_levels_record_movements() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  raw text := current_setting('invsync.movement', true);
  ctx jsonb := CASE WHEN raw IS NULL OR raw = '' THEN '{}'::jsonb ELSE raw::jsonb END;
  src text := CASE TG_OP
    WHEN 'INSERT' THEN 'SELECT NULL::jsonb AS o, to_jsonb(n) AS n FROM stock_new n'
    WHEN 'DELETE' THEN 'SELECT to_jsonb(o) AS o, NULL::jsonb AS n FROM stock_old o'
    ELSE 'SELECT to_jsonb(o) AS o, to_jsonb(n) AS n FROM stock_new n FULL JOIN stock_old o ON o.sku = n.sku AND o.location_id = n.location_id'
  END;
BEGIN
  EXECUTE format($q$
    WITH c AS (
      SELECT coalesce(n, o) AS r, n IS NULL AS gone,
             coalesce((n->>'on_hand')::int, 0) - coalesce((o->>'on_hand')::int, 0) AS d_on,
             coalesce((n->>'reserved')::int, 0) - coalesce((o->>'reserved')::int, 0) AS d_re,
             coalesce((n->>'safety_stock')::int, 0) - coalesce((o->>'safety_stock')::int, 0) AS d_ss,
             coalesce((n->>'incoming')::int, 0) - coalesce((o->>'incoming')::int, 0) AS d_in,
             coalesce((n->>'backordered')::int, 0) - coalesce((o->>'backordered')::int, 0) AS d_bo,
             coalesce(n, '{}'::jsonb) AS a
        FROM (%s) AS x
    ), t AS (SELECT clock_timestamp() AS ts, $1 - 'rows' - 'skus' AS base, $1 ? 'kind' AS stated)
    INSERT INTO stock_movements (
      sku, location_id, kind, reason, source_system, reference, actor, details,
      on_hand_delta, reserved_delta, safety_stock_delta, incoming_delta, backordered_delta,
      on_hand, reserved, safety_stock, incoming, backordered, version, deleted, recorded_at, effective_at)
    SELECT c.r->>'sku', c.r->>'location_id',
           coalesce(m->>'kind', 'sql'), m->>'reason',
           coalesce(m->>'source', CASE WHEN t.stated THEN NULL ELSE nullif(current_setting('application_name', true), '') END),
           m->>'reference',
           coalesce(m->>'actor', CASE WHEN t.stated THEN NULL ELSE session_user::text END),
           m->'details',
           c.d_on, c.d_re, c.d_ss, c.d_in, c.d_bo,
           coalesce((c.a->>'on_hand')::int, 0), coalesce((c.a->>'reserved')::int, 0), coalesce((c.a->>'safety_stock')::int, 0),
           coalesce((c.a->>'incoming')::int, 0), coalesce((c.a->>'backordered')::int, 0),
           (c.r->>'version')::bigint, c.gone, t.ts,
           CASE WHEN m ? 'countedAt' THEN to_timestamp((m->>'countedAt')::bigint / 1000.0) ELSE t.ts END
      FROM c CROSS JOIN t
     CROSS JOIN LATERAL (
       SELECT t.base || coalesce($1->'skus'->(c.r->>'sku'), '{}'::jsonb)
                     || coalesce($1->'rows'->((c.r->>'sku') || chr(9) || (c.r->>'location_id')), '{}'::jsonb) AS m
     ) AS mm
     WHERE c.d_on <> 0 OR c.d_re <> 0 OR c.d_ss <> 0 OR c.d_in <> 0 OR c.d_bo <> 0
  $q$, src) USING ctx;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS stock_levels_movement ON stock_levels;
DROP TRIGGER IF EXISTS stock_levels_movement_insert ON stock_levels;
DROP TRIGGER IF EXISTS stock_levels_movement_update ON stock_levels;
DROP TRIGGER IF EXISTS stock_levels_movement_delete ON stock_levels;
CREATE TRIGGER stock_levels_movement_insert AFTER INSERT ON stock_levels
  REFERENCING NEW TABLE AS stock_new FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_record_movements();
CREATE TRIGGER stock_levels_movement_update AFTER UPDATE ON stock_levels
  REFERENCING OLD TABLE AS stock_old NEW TABLE AS stock_new FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_record_movements();
CREATE TRIGGER stock_levels_movement_delete AFTER DELETE ON stock_levels
  REFERENCING OLD TABLE AS stock_old FOR EACH STATEMENT EXECUTE FUNCTION stock_levels_record_movements();
DROP FUNCTION IF EXISTS stock_levels_record_movement();
