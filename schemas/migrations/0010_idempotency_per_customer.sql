-- Idempotency keys are scoped by customer (docs/purchase-path.md, docs/security.md#credentials-who-may-do-what).
--
-- Until now `orders.idempotency_key` was unique across every customer: a client that learnt (or
-- guessed) another customer's key could replay it and be answered with that customer's order,
-- and a key one customer used blocked it for everyone else. A key now belongs to its customer:
-- the uniqueness is (customer_id, idempotency_key), and the write-back's duplicate lookup asks for
-- the same customer. Existing rows keep their keys (they were unique globally, so they are
-- unique per customer too).

CREATE UNIQUE INDEX IF NOT EXISTS orders_customer_idempotency_key_idx ON orders (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
DROP INDEX IF EXISTS orders_idempotency_key_idx;

-- purchase_write_back as in 0008_purchase_write_back.sql, with the duplicate-key lookup scoped by customer.
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
  results   jsonb := '[]'::jsonb;
  accepted  jsonb := '[]'::jsonb;
  ex        record;
  versions  jsonb;
  guarded   int;
  wanted    int;
BEGIN
  SELECT array_agg(DISTINCT x->>'sku' ORDER BY x->>'sku')
    INTO v_skus
    FROM jsonb_array_elements(p_holds) AS hh, jsonb_array_elements(hh->'items') AS x;

  -- Lock the SKUs' rows in one order (sku, location_id) and take the figures.
  SELECT array_agg(s.sku ORDER BY s.sku, s.location_id),
         array_agg(s.location_id ORDER BY s.sku, s.location_id),
         array_agg(greatest(0, s.on_hand - s.reserved - s.safety_stock) ORDER BY s.sku, s.location_id)
    INTO r_sku, r_loc, r_free
    FROM (SELECT sl.sku, sl.location_id, sl.on_hand, sl.reserved, sl.safety_stock
            FROM stock_levels sl WHERE sl.sku = ANY (v_skus)
           ORDER BY sl.sku, sl.location_id FOR UPDATE) AS s;
  n := coalesce(array_length(r_sku, 1), 0);
  r_take := array_fill(0, ARRAY[greatest(n, 1)]);

  FOR h IN SELECT value FROM jsonb_array_elements(p_holds) LOOP
    failed := false;
    undo := '{}';
    undo_qty := '{}';
    lines := '[]'::jsonb;
    FOR it IN SELECT value FROM jsonb_array_elements(h->'items') LOOP
      need := (it->>'qty')::int;
      allocs := '[]'::jsonb;
      WHILE need > 0 LOOP
        best := 0;
        FOR i IN 1..n LOOP
          IF r_sku[i] = it->>'sku' AND r_free[i] > 0
             AND (best = 0 OR r_free[i] > r_free[best] OR (r_free[i] = r_free[best] AND r_loc[i] < r_loc[best])) THEN
            best := i;
          END IF;
        END LOOP;
        IF best = 0 THEN
          failed := true;
          EXIT;
        END IF;
        took := least(need, r_free[best]);
        r_free[best] := r_free[best] - took;
        r_take[best] := r_take[best] + took;
        undo := undo || best;
        undo_qty := undo_qty || took;
        allocs := allocs || jsonb_build_object('locationId', r_loc[best], 'qty', took);
        need := need - took;
      END LOOP;
      EXIT WHEN failed;
      lines := lines || jsonb_build_object('sku', it->>'sku', 'qty', (it->>'qty')::int, 'allocations', allocs);
    END LOOP;

    IF NOT failed THEN
      INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, expires_at)
      VALUES ((h->>'id')::uuid, h->>'customer', 'reserved', h->>'idem', h->>'hash', (h->>'expires')::timestamptz)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        SELECT o.id, o.request_hash INTO ex FROM orders o
         WHERE o.customer_id = h->>'customer' AND o.idempotency_key = h->>'idem' AND o.id <> (h->>'id')::uuid;
        IF FOUND AND NOT EXISTS (SELECT 1 FROM orders WHERE id = (h->>'id')::uuid) THEN
          results := results || jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'duplicate_key',
                                                    'existing', jsonb_build_object('orderId', ex.id, 'hash', ex.request_hash));
        ELSE
          results := results || jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'exists');
        END IF;
        failed := true;
      END IF;
    ELSE
      results := results || jsonb_build_object('id', h->>'id', 'ok', false, 'reason', 'insufficient');
    END IF;

    IF failed THEN
      FOR i IN 1..coalesce(array_length(undo, 1), 0) LOOP
        r_free[undo[i]] := r_free[undo[i]] + undo_qty[i];
        r_take[undo[i]] := r_take[undo[i]] - undo_qty[i];
      END LOOP;
    ELSE
      accepted := accepted || jsonb_build_object('id', h->>'id', 'customer', h->>'customer', 'expires', h->>'expires', 'lines', lines);
    END IF;
  END LOOP;

  IF jsonb_array_length(accepted) = 0 THEN
    RETURN results;
  END IF;

  -- One guarded UPDATE per (sku, location) that gave units: the database's own check.
  SELECT count(*) FILTER (WHERE take > 0) INTO wanted FROM unnest(r_take) AS t(take);
  WITH u AS (
    UPDATE stock_levels s SET reserved = s.reserved + d.take
      FROM unnest(r_sku, r_loc, r_take) AS d(sku, location_id, take)
     WHERE d.take > 0 AND s.sku = d.sku AND s.location_id = d.location_id
       AND s.on_hand - s.reserved - s.safety_stock >= d.take
    RETURNING s.sku, s.version
  )
  SELECT count(*), (SELECT jsonb_object_agg(q.sku, q.version) FROM (SELECT u2.sku, max(u2.version) AS version FROM u AS u2 GROUP BY u2.sku) AS q)
    INTO guarded, versions
    FROM u;
  IF guarded <> wanted THEN
    RAISE EXCEPTION 'purchase_write_back: the stock guard refused a reservation (on_hand - reserved - safety_stock < qty)'
      USING ERRCODE = 'check_violation';
  END IF;

  INSERT INTO order_lines (order_id, sku, qty, version)
  SELECT (a->>'id')::uuid, l->>'sku', (l->>'qty')::int, (versions->>(l->>'sku'))::bigint
    FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l;

  INSERT INTO reservations (order_id, sku, location_id, qty)
  SELECT (a->>'id')::uuid, l->>'sku', x->>'locationId', (x->>'qty')::int
    FROM jsonb_array_elements(accepted) AS a, jsonb_array_elements(a->'lines') AS l, jsonb_array_elements(l->'allocations') AS x;

  INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
  SELECT gen_random_uuid(), 'orders', a->>'id', 'OrderPlaced',
         jsonb_build_object('type', 'OrderPlaced', 'orderId', a->>'id', 'customerId', a->>'customer', 'status', 'reserved',
                            'expiresAt', to_char((a->>'expires')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'items', a->'lines')
    FROM jsonb_array_elements(accepted) AS a;

  RETURN results || (
    SELECT jsonb_agg(jsonb_build_object('id', a->>'id', 'ok', true, 'lines', a->'lines',
                     'versions', (SELECT jsonb_object_agg(l->>'sku', versions->(l->>'sku')) FROM jsonb_array_elements(a->'lines') AS l)))
      FROM jsonb_array_elements(accepted) AS a);
END;
$$;
