-- Hold lifecycle (docs/purchase-path.md, "Hold lifecycle"): changing the quantities of an
-- unconfirmed hold. Extending a hold needs no schema (orders.expires_at moves, with an outbox row).
--
-- A change that takes more units goes through the gate first, as a hold of its own (the *change
-- hold*, id = the change id): gate-reserve.lua checks availability and the customer's limit and
-- takes the extra units atomically; `hold_resize` below then writes the change back. That change
-- hold is settled like a purchase: if its gateway dies, the reaper asks Postgres whether the change
-- committed. `order_changes` is where that question is answered: its primary key is the claim both
-- sides race for. `hold_resize` inserts the change id before it changes anything; the reaper
-- (OrdersStore.settleHold) inserts it as 'abandoned'. Of the two inserts one wins: a change the
-- reaper abandoned can never commit, and one that committed is settled with its versions.
CREATE TABLE IF NOT EXISTS order_changes (
  id          uuid        PRIMARY KEY,
  -- NULL for a claim the reaper made (the hold was not a change, or its change never committed).
  order_id    uuid        REFERENCES orders (id) ON DELETE CASCADE,
  state       text        NOT NULL,
  -- {sku: version}: each changed SKU's version right after the change (the settle needs them).
  versions    jsonb,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT order_changes_state_known CHECK (state IN ('applied', 'abandoned'))
);
CREATE INDEX IF NOT EXISTS order_changes_order_idx ON order_changes (order_id);

-- A decrease gives units back to the customer's per-SKU limit like a cancel does (migration
-- 0012): its release is committed with the change, keyed by the change id (not an order id),
-- carried out right after the commit or by the expiry worker. The row's key is "whatever owes the
-- release": an order (cancel, expiry) or a change.
ALTER TABLE customer_limit_releases DROP CONSTRAINT IF EXISTS customer_limit_releases_order_id_fkey;

-- Input: {"id": change uuid, "orderId": uuid, "lines": [{"sku": text, "from": int, "to": int}, ...]}
--   `from` is the line's quantity the caller computed the change from (what it took through the
--   gate); `to` the target quantity (0 removes the line). Lines not listed keep their quantity.
-- Output (jsonb):
--   {"ok": true, "lines": [...every line of the order, with allocations], "versions": {sku: version},
--    "released": [{"sku", "qty"}]}
--   {"ok": false, "reason": "unknown_order"}
--   {"ok": false, "reason": "invalid_state", "status": text}   not reserved, or past its expiry ('expired')
--   {"ok": false, "reason": "unchanged"}     every listed line is already at its target
--   {"ok": false, "reason": "conflict"}      a line's quantity is no longer `from` (a concurrent change)
--   {"ok": false, "reason": "exists"}        the change id was claimed by the reaper
--   {"ok": false, "reason": "insufficient"}  Postgres cannot cover an increase
-- A refusal changes nothing. Raises check_violation if the stock guard refuses (rolled back).
--
-- Locks: the order row first, then the SKUs' stock rows in (sku, location_id) order — the order
-- confirm/cancel/expiry lock in, and the write-back's stock-row order.
-- Increases are allocated like purchase_write_back (most sellable units first, ties by location
-- id, splitting only when one location is not enough); decreases give back from the order's
-- smallest reservation of the SKU first (ties by location id), so split lines shrink to fewer
-- locations.
CREATE OR REPLACE FUNCTION hold_resize(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_id      uuid := (p->>'id')::uuid;
  v_order   uuid := (p->>'orderId')::uuid;
  o         record;
  ln        jsonb;
  cur       int;
  same      boolean := true;
  v_skus    text[];
  r_sku     text[];
  r_loc     text[];
  r_free    int[];
  r_delta   int[];
  n         int;
  i         int;
  best      int;
  need      int;
  took      int;
  res       record;
  wanted    int;
  guarded   int;
  v_versions jsonb;
  released  jsonb := '[]'::jsonb;
  lines     jsonb;
BEGIN
  SELECT id, customer_id, status, expires_at INTO o FROM orders WHERE id = v_order FOR UPDATE;
  IF NOT FOUND OR o.status = 'abandoned' THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'unknown_order');
  END IF;
  IF o.status <> 'reserved' THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'invalid_state', 'status', o.status);
  END IF;
  IF o.expires_at <= clock_timestamp() THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'invalid_state', 'status', 'expired');
  END IF;

  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') LOOP
    SELECT qty INTO cur FROM order_lines WHERE order_id = v_order AND sku = ln->>'sku';
    cur := coalesce(cur, 0);
    IF cur <> (ln->>'to')::int THEN same := false; END IF;
  END LOOP;
  IF same THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'unchanged');
  END IF;
  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') LOOP
    SELECT qty INTO cur FROM order_lines WHERE order_id = v_order AND sku = ln->>'sku';
    IF coalesce(cur, 0) <> (ln->>'from')::int THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'conflict');
    END IF;
  END LOOP;

  INSERT INTO order_changes (id, order_id, state) VALUES (v_id, v_order, 'applied') ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'exists');
  END IF;

  SELECT array_agg(DISTINCT x->>'sku' ORDER BY x->>'sku') INTO v_skus FROM jsonb_array_elements(p->'lines') AS x;
  SELECT array_agg(s.sku ORDER BY s.sku, s.location_id),
         array_agg(s.location_id ORDER BY s.sku, s.location_id),
         array_agg(greatest(0, s.on_hand - s.reserved - s.safety_stock) ORDER BY s.sku, s.location_id)
    INTO r_sku, r_loc, r_free
    FROM (SELECT sl.sku, sl.location_id, sl.on_hand, sl.reserved, sl.safety_stock
            FROM stock_levels sl WHERE sl.sku = ANY (v_skus)
           ORDER BY sl.sku, sl.location_id FOR UPDATE) AS s;
  n := coalesce(array_length(r_sku, 1), 0);
  r_delta := array_fill(0, ARRAY[greatest(n, 1)]);

  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') LOOP
    need := (ln->>'to')::int - (ln->>'from')::int;
    IF need > 0 THEN
      WHILE need > 0 LOOP
        best := 0;
        FOR i IN 1..n LOOP
          IF r_sku[i] = ln->>'sku' AND r_free[i] > 0
             AND (best = 0 OR r_free[i] > r_free[best] OR (r_free[i] = r_free[best] AND r_loc[i] < r_loc[best])) THEN
            best := i;
          END IF;
        END LOOP;
        IF best = 0 THEN
          DELETE FROM order_changes WHERE id = v_id;
          RETURN jsonb_build_object('ok', false, 'reason', 'insufficient');
        END IF;
        took := least(need, r_free[best]);
        r_free[best] := r_free[best] - took;
        r_delta[best] := r_delta[best] + took;
        need := need - took;
      END LOOP;
    ELSIF need < 0 THEN
      need := -need;
      released := released || jsonb_build_object('sku', ln->>'sku', 'qty', need);
      FOR res IN SELECT location_id, qty FROM reservations WHERE order_id = v_order AND sku = ln->>'sku' ORDER BY qty, location_id LOOP
        EXIT WHEN need = 0;
        took := least(need, res.qty);
        FOR i IN 1..n LOOP
          IF r_sku[i] = ln->>'sku' AND r_loc[i] = res.location_id THEN
            r_delta[i] := r_delta[i] - took;
          END IF;
        END LOOP;
        need := need - took;
      END LOOP;
    END IF;
  END LOOP;

  -- Raises: the database's own check on every row that gives units; gives back never below 0
  -- (as cancel and expiry do).
  SELECT count(*) FILTER (WHERE d > 0) INTO wanted FROM unnest(r_delta) AS t(d);
  WITH u AS (
    UPDATE stock_levels s SET reserved = CASE WHEN d.delta > 0 THEN s.reserved + d.delta ELSE greatest(0, s.reserved + d.delta) END
      FROM unnest(r_sku, r_loc, r_delta) AS d(sku, location_id, delta)
     WHERE d.delta <> 0 AND s.sku = d.sku AND s.location_id = d.location_id
       AND (d.delta < 0 OR s.on_hand - s.reserved - s.safety_stock >= d.delta)
    RETURNING s.sku, s.version, d.delta
  )
  SELECT count(*) FILTER (WHERE u.delta > 0),
         (SELECT jsonb_object_agg(q.sku, q.version) FROM (SELECT u2.sku, max(u2.version) AS version FROM u AS u2 GROUP BY u2.sku) AS q)
    INTO guarded, v_versions
    FROM u;
  IF guarded <> wanted THEN
    RAISE EXCEPTION 'hold_resize: the stock guard refused a reservation (on_hand - reserved - safety_stock < qty)'
      USING ERRCODE = 'check_violation';
  END IF;

  -- Reservations and lines follow the deltas.
  INSERT INTO reservations AS r (order_id, sku, location_id, qty)
  SELECT v_order, d.sku, d.location_id, d.delta FROM unnest(r_sku, r_loc, r_delta) AS d(sku, location_id, delta) WHERE d.delta > 0
  ON CONFLICT (order_id, sku, location_id) DO UPDATE SET qty = r.qty + excluded.qty;
  -- Emptied reservations go first: the UPDATE after them must not shrink a row into the DELETE's reach.
  DELETE FROM reservations r
   USING unnest(r_sku, r_loc, r_delta) AS d(sku, location_id, delta)
   WHERE d.delta < 0 AND r.order_id = v_order AND r.sku = d.sku AND r.location_id = d.location_id AND r.qty + d.delta <= 0;
  UPDATE reservations r SET qty = r.qty + d.delta
    FROM unnest(r_sku, r_loc, r_delta) AS d(sku, location_id, delta)
   WHERE d.delta < 0 AND r.order_id = v_order AND r.sku = d.sku AND r.location_id = d.location_id AND r.qty + d.delta > 0;
  UPDATE order_lines l SET qty = (x->>'to')::int, version = coalesce((v_versions->>l.sku)::bigint, l.version)
    FROM jsonb_array_elements(p->'lines') AS x
   WHERE l.order_id = v_order AND l.sku = x->>'sku' AND (x->>'to')::int > 0;
  DELETE FROM order_lines l USING jsonb_array_elements(p->'lines') AS x
   WHERE l.order_id = v_order AND l.sku = x->>'sku' AND (x->>'to')::int = 0;

  UPDATE order_changes SET versions = coalesce(v_versions, '{}'::jsonb) WHERE id = v_id;
  UPDATE orders SET updated_at = clock_timestamp() WHERE id = v_order;
  IF jsonb_array_length(released) > 0 THEN
    INSERT INTO customer_limit_releases (order_id, customer_id, items) VALUES (v_id, o.customer_id, released);
  END IF;

  SELECT coalesce(jsonb_agg(jsonb_build_object('sku', l.sku, 'qty', l.qty, 'allocations',
           (SELECT coalesce(jsonb_agg(jsonb_build_object('locationId', r.location_id, 'qty', r.qty) ORDER BY r.location_id), '[]'::jsonb)
              FROM reservations r WHERE r.order_id = v_order AND r.sku = l.sku)) ORDER BY l.sku), '[]'::jsonb)
    INTO lines FROM order_lines l WHERE l.order_id = v_order;

  INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
  VALUES (gen_random_uuid(), 'orders', v_order::text, 'OrderChanged',
          jsonb_build_object('type', 'OrderChanged', 'orderId', v_order, 'customerId', o.customer_id, 'status', 'reserved',
                             'expiresAt', to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                             'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                             'changeId', v_id,
                             'changes', (SELECT jsonb_agg(jsonb_build_object('sku', x->>'sku', 'from', (x->>'from')::int, 'to', (x->>'to')::int))
                                           FROM jsonb_array_elements(p->'lines') AS x),
                             'items', lines));

  RETURN jsonb_build_object('ok', true, 'lines', lines, 'versions', coalesce(v_versions, '{}'::jsonb), 'released', released);
END;
$$;
