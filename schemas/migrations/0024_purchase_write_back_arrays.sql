-- purchase_write_back as in 0018_incoming.sql, with the batch's results and accepted holds
-- gathered in jsonb[] arrays (array_append extends a plpgsql array in place) instead of jsonb
-- arrays (`jsonb || x` copies the whole array on every append): the appends made a batch of n
-- holds cost O(n^2), about a third of a 200-hold write-back's time in Postgres (issue 16,
-- docs/benchmarks.md "Purchase path at the HTTP floor"). Same inputs, same result, same rows.
CREATE OR REPLACE FUNCTION purchase_write_back(p_holds jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_skus    text[];
  r_sku     text[];
  r_loc     text[];
  r_free    int[];
  r_take    int[];
  n         int;
  h         jsonb;
  it        jsonb;
  i         int;
  best      int;
  need      int;
  took      int;
  undo      int[];
  undo_qty  int[];
  allocs    jsonb;
  lines     jsonb;
  failed    boolean;
  results   jsonb[] := '{}';
  accepted_a jsonb[] := '{}';
  accepted  jsonb;
  ex        record;
  versions  jsonb;
  guarded   int;
  wanted    int;
  ch        text;
  c_rule    text;
  c_locs    text[];
  pin       int[];
  bo        jsonb;
  bo_used   jsonb;
  bo_line   jsonb;
  bo_left   int;
BEGIN
  SELECT array_agg(DISTINCT x->>'sku' ORDER BY x->>'sku')
    INTO v_skus
    FROM jsonb_array_elements(p_holds) AS hh, jsonb_array_elements(hh->'items') AS x;

  -- Lock the SKUs' rows in one order (sku, location_id) and take the figures.
  SELECT l.r_sku, l.r_loc, l.r_free INTO r_sku, r_loc, r_free FROM stock_lock_rows(v_skus) AS l;
  n := coalesce(array_length(r_sku, 1), 0);
  r_take := array_fill(0, ARRAY[greatest(n, 1)]);
  bo := backorder_terms(v_skus);

  FOR h IN SELECT value FROM jsonb_array_elements(p_holds) LOOP
    failed := false;
    undo := '{}';
    undo_qty := '{}';
    lines := '[]'::jsonb;
    bo_used := '{}'::jsonb;
    ch := h->>'channel';
    SELECT t.rule, t.locs INTO c_rule, c_locs FROM sales_channel_terms(ch) AS t;
    FOR it IN SELECT value FROM jsonb_array_elements(h->'items') LOOP
      need := (it->>'qty')::int;
      allocs := '[]'::jsonb;
      pin := sales_channel_pins(ch, it->>'sku', r_sku, r_loc, r_free);
      WHILE need > 0 LOOP
        best := sales_channel_pick(c_rule, c_locs, it->>'sku', r_sku, r_loc, r_free, pin, need);
        EXIT WHEN best = 0;
        took := least(need, r_free[best] - pin[best]);
        r_free[best] := r_free[best] - took;
        r_take[best] := r_take[best] + took;
        undo := undo || best;
        undo_qty := undo_qty || took;
        allocs := allocs || jsonb_build_object('locationId', r_loc[best], 'qty', took);
        need := need - took;
      END LOOP;
      bo_line := NULL;
      IF need > 0 THEN
        -- What on hand cannot cover: backordered within the SKU's allowance, or the hold fails.
        bo_left := coalesce((bo->(it->>'sku')->>'left')::int, 0) - coalesce((bo_used->>(it->>'sku'))::int, 0);
        IF bo_left < need THEN
          failed := true;
          EXIT;
        END IF;
        bo_used := bo_used || jsonb_build_object(it->>'sku', coalesce((bo_used->>(it->>'sku'))::int, 0) + need);
        bo_line := jsonb_build_object('backordered', need, 'eta', bo->(it->>'sku')->'eta', 'backorderLocationId', bo->(it->>'sku')->'loc');
      END IF;
      lines := lines || (jsonb_build_object('sku', it->>'sku', 'qty', (it->>'qty')::int, 'allocations', allocs) || coalesce(bo_line, '{}'::jsonb));
    END LOOP;

    IF NOT failed THEN
      INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, expires_at, channel_id)
      VALUES ((h->>'id')::uuid, h->>'customer', 'reserved', h->>'idem', h->>'hash', (h->>'expires')::timestamptz, h->>'channel')
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        SELECT o.id, o.request_hash INTO ex FROM orders o
         WHERE o.customer_id = h->>'customer' AND o.idempotency_key = h->>'idem' AND o.id <> (h->>'id')::uuid;
        IF FOUND AND NOT EXISTS (SELECT 1 FROM orders WHERE id = (h->>'id')::uuid) THEN
          results := array_append(results, jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'duplicate_key',
                                                    'existing', jsonb_build_object('orderId', ex.id, 'hash', ex.request_hash)));
        ELSE
          results := array_append(results, jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'exists'));
        END IF;
        failed := true;
      END IF;
    ELSE
      results := array_append(results, jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'insufficient'));
    END IF;

    IF failed THEN
      FOR i IN 1..coalesce(array_length(undo, 1), 0) LOOP
        r_free[undo[i]] := r_free[undo[i]] + undo_qty[i];
        r_take[undo[i]] := r_take[undo[i]] - undo_qty[i];
      END LOOP;
    ELSE
      -- The allowance this hold used is gone for the holds after it.
      FOR it IN SELECT jsonb_build_object('sku', k, 'qty', v::int) FROM jsonb_each_text(bo_used) AS e(k, v) LOOP
        bo := jsonb_set(bo, ARRAY[it->>'sku', 'left'], to_jsonb((bo->(it->>'sku')->>'left')::int - (it->>'qty')::int));
      END LOOP;
      accepted_a := array_append(accepted_a, jsonb_build_object('id', h->>'id', 'customer', h->>'customer', 'expires', h->>'expires', 'lines', lines, 'channel', h->'channel'));
    END IF;
  END LOOP;

  IF coalesce(array_length(accepted_a, 1), 0) = 0 THEN
    RETURN to_jsonb(results);
  END IF;
  accepted := to_jsonb(accepted_a);

  -- One guarded UPDATE per (sku, location) that gave units: the database's own check.
  SELECT count(*) FILTER (WHERE take > 0) INTO wanted FROM unnest(r_take) AS t(take);
  WITH u AS (
    UPDATE stock_levels s SET reserved = s.reserved + d.take
      FROM unnest(r_sku, r_loc, r_take) AS d(sku, location_id, take)
     WHERE d.take > 0 AND s.sku = d.sku AND s.location_id = d.location_id
       AND s.on_hand - s.reserved - s.safety_stock >= d.take
    RETURNING 1
  )
  SELECT count(*) INTO guarded FROM u;
  IF guarded <> wanted THEN
    RAISE EXCEPTION 'purchase_write_back: the stock guard refused a reservation (on_hand - reserved - safety_stock < qty)'
      USING ERRCODE = 'check_violation';
  END IF;

  -- Backordered units raise `backordered` on their terms' row (rows already locked above).
  UPDATE stock_levels s SET backordered = s.backordered + d.qty
    FROM (SELECT l->>'sku' AS sku, l->>'backorderLocationId' AS loc, sum((l->>'backordered')::int) AS qty
            FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l
           WHERE l ? 'backordered'
           GROUP BY 1, 2 ORDER BY 1, 2) AS d
   WHERE s.sku = d.sku AND s.location_id = d.loc;

  -- Every row of these SKUs is locked by this transaction: the highest version is this write's.
  SELECT jsonb_object_agg(q.sku, q.version) INTO versions
    FROM (SELECT s.sku, max(s.version) AS version FROM stock_levels s WHERE s.sku = ANY (v_skus) GROUP BY s.sku) AS q;

  INSERT INTO order_lines (order_id, sku, qty, version)
  SELECT (a->>'id')::uuid, l->>'sku', (l->>'qty')::int, (versions->>(l->>'sku'))::bigint
    FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l;

  INSERT INTO reservations (order_id, sku, location_id, qty)
  SELECT (a->>'id')::uuid, l->>'sku', x->>'locationId', (x->>'qty')::int
    FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l, jsonb_array_elements(l->'allocations') AS x;

  INSERT INTO backorders (order_id, sku, location_id, qty, ordered_qty, eta)
  SELECT (a->>'id')::uuid, l->>'sku', l->>'backorderLocationId', (l->>'backordered')::int, (l->>'backordered')::int, (l->>'eta')::timestamptz
    FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l
   WHERE l ? 'backordered';

  -- Lines as clients see them: the backorder's location is internal.
  accepted := (SELECT jsonb_agg(a || jsonb_build_object('lines', (SELECT jsonb_agg(l - 'backorderLocationId') FROM jsonb_array_elements(a->'lines') AS l)))
                 FROM jsonb_array_elements(accepted) AS a);

  INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
  SELECT gen_random_uuid(), 'orders', a->>'id', 'OrderPlaced',
         jsonb_build_object('type', 'OrderPlaced', 'orderId', a->>'id', 'customerId', a->>'customer', 'status', 'reserved',
                            'expiresAt', to_char((a->>'expires')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'items', a->'lines')
         || CASE WHEN a->>'channel' IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('channel', a->>'channel') END
    FROM jsonb_array_elements(accepted) AS a;

  RETURN to_jsonb(results) || (
    SELECT jsonb_agg(jsonb_build_object('id', a->>'id', 'ok', true, 'lines', a->'lines',
                     'versions', (SELECT jsonb_object_agg(l->>'sku', versions->(l->>'sku')) FROM jsonb_array_elements(a->'lines') AS l)))
      FROM jsonb_array_elements(accepted) AS a);
END;
$$;
