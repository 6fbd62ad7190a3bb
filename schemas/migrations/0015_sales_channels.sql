-- Sales channels (docs/channels.md): which locations serve a channel, in what priority, how its
-- purchases are sourced, and how many units are ring-fenced for it.
--
-- A channel's availability is computed by the stream processor from the SKU's rows and this
-- configuration (lib/contracts/channels.ts); the gate sells a channel-scoped purchase from it and
-- the write-back allocates only on the channel's locations, by its sourcing rule.
--
-- Every statement that changes the configuration bumps the one row of sales_channel_config in the
-- same transaction (statement triggers below). That row is captured by Debezium like stock: its
-- change event tells every processor and gateway to reload the configuration, so a change takes
-- effect without a restart, and its version orders configurations (a process never applies an
-- older configuration over a newer one).

CREATE TABLE IF NOT EXISTS sales_channels (
  channel_id      text        PRIMARY KEY,
  name            text        NOT NULL,
  -- priority: the channel's locations in priority order, splitting when one is not enough;
  -- most_stock: most sellable units first; fewest_splits: one location that covers the line
  -- when any does (the highest priority of those), else most_stock; single: only
  -- pickup_location (click and collect), never split.
  sourcing        text        NOT NULL DEFAULT 'priority',
  pickup_location text,
  -- The default ring-fence of every SKU (per-SKU overrides in sales_channel_fences): a number of
  -- units or a percentage of the channel's pooled availability, or none.
  fence_units     int,
  fence_pct       numeric(5, 2),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sales_channels_id_format CHECK (channel_id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  CONSTRAINT sales_channels_sourcing_known CHECK (sourcing IN ('priority', 'most_stock', 'fewest_splits', 'single')),
  CONSTRAINT sales_channels_single_has_pickup CHECK (sourcing <> 'single' OR pickup_location IS NOT NULL),
  CONSTRAINT sales_channels_fence_one_kind CHECK (fence_units IS NULL OR fence_pct IS NULL),
  CONSTRAINT sales_channels_fence_units_range CHECK (fence_units IS NULL OR fence_units >= 0),
  CONSTRAINT sales_channels_fence_pct_range CHECK (fence_pct IS NULL OR (fence_pct >= 0 AND fence_pct <= 100))
);

CREATE TABLE IF NOT EXISTS sales_channel_locations (
  channel_id  text NOT NULL REFERENCES sales_channels (channel_id) ON DELETE CASCADE,
  location_id text NOT NULL,
  -- Lower first.
  priority    int  NOT NULL DEFAULT 0,
  PRIMARY KEY (channel_id, location_id),
  CONSTRAINT sales_channel_locations_location_not_blank CHECK (length(location_id) BETWEEN 1 AND 64)
);

CREATE TABLE IF NOT EXISTS sales_channel_fences (
  channel_id  text NOT NULL REFERENCES sales_channels (channel_id) ON DELETE CASCADE,
  sku         text NOT NULL,
  fence_units int,
  fence_pct   numeric(5, 2),
  PRIMARY KEY (channel_id, sku),
  CONSTRAINT sales_channel_fences_one_kind CHECK ((fence_units IS NULL) <> (fence_pct IS NULL)),
  CONSTRAINT sales_channel_fences_units_range CHECK (fence_units IS NULL OR fence_units >= 0),
  CONSTRAINT sales_channel_fences_pct_range CHECK (fence_pct IS NULL OR (fence_pct >= 0 AND fence_pct <= 100))
);

CREATE TABLE IF NOT EXISTS sales_channel_config (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint  NOT NULL DEFAULT 0
);
INSERT INTO sales_channel_config (id, version) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION sales_channel_config_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE sales_channel_config SET version = version + 1 WHERE id;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS sales_channels_bump ON sales_channels;
CREATE TRIGGER sales_channels_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channels
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();
DROP TRIGGER IF EXISTS sales_channel_locations_bump ON sales_channel_locations;
CREATE TRIGGER sales_channel_locations_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channel_locations
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();
DROP TRIGGER IF EXISTS sales_channel_fences_bump ON sales_channel_fences;
CREATE TRIGGER sales_channel_fences_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sales_channel_fences
  FOR EACH STATEMENT EXECUTE FUNCTION sales_channel_config_bump();

-- The channel an order was sold on (NULL: the pooled figure, no channel).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS channel_id text;

-- Debezium captures sales_channel_config (debezium/connectors/stock-cdc.json). Its connector
-- creates the publication on a fresh database; on a database where it already exists, the table
-- is added here so the next change is captured without waiting for the connector to do it.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'invsync_stock_cdc')
     AND NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'invsync_stock_cdc' AND tablename = 'sales_channel_config') THEN
    ALTER PUBLICATION invsync_stock_cdc ADD TABLE sales_channel_config;
  END IF;
END;
$$;

-- The allocation of a sales channel's purchase, shared by purchase_write_back and hold_resize
-- (their TypeScript specification: allocateFor and pinsAgainst; docs/channels.md, "Sourcing").

-- Locks the SKUs' stock rows in one order (sku, location_id) and returns their figures as arrays
-- (sellable = on_hand - reserved - safety_stock, never below 0): the start of every write-back
-- that allocates (purchase_write_back, hold_resize). The locks last until the caller's commit.
CREATE OR REPLACE FUNCTION stock_lock_rows(p_skus text[], OUT r_sku text[], OUT r_loc text[], OUT r_free int[])
LANGUAGE sql AS $$
  SELECT array_agg(s.sku ORDER BY s.sku, s.location_id),
         array_agg(s.location_id ORDER BY s.sku, s.location_id),
         array_agg(greatest(0, s.on_hand - s.reserved - s.safety_stock) ORDER BY s.sku, s.location_id)
    FROM (SELECT sl.sku, sl.location_id, sl.on_hand, sl.reserved, sl.safety_stock
            FROM stock_levels sl WHERE sl.sku = ANY (p_skus)
           ORDER BY sl.sku, sl.location_id FOR UPDATE) AS s;
$$;

-- A channel's sourcing rule and its locations in priority order (`single`: only the pickup
-- location). No channel: most_stock over every location (NULL locations). An unknown channel:
-- `single` over no location, so nothing can be allocated.
CREATE OR REPLACE FUNCTION sales_channel_terms(p_channel text, OUT rule text, OUT locs text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_pickup text;
BEGIN
  rule := 'most_stock';
  locs := NULL;
  IF p_channel IS NULL THEN RETURN; END IF;
  SELECT s.sourcing, s.pickup_location,
         coalesce(array_agg(l.location_id ORDER BY l.priority, l.location_id) FILTER (WHERE l.location_id IS NOT NULL), '{}')
    INTO rule, v_pickup, locs
    FROM sales_channels s LEFT JOIN sales_channel_locations l USING (channel_id)
   WHERE s.channel_id = p_channel
   GROUP BY s.sourcing, s.pickup_location;
  IF NOT FOUND THEN
    rule := 'single';
    locs := '{}';
  ELSIF rule = 'single' THEN
    locs := ARRAY[v_pickup];
  END IF;
END;
$$;

-- Per row of the locked figures (r_sku, r_loc, r_free), the units other channels' fences pin
-- there for `p_sku` (fencePins in lib/contracts/channels.ts): each fenced channel's fence placed
-- on its locations in its priority order. All zero without a channel.
CREATE OR REPLACE FUNCTION sales_channel_pins(p_channel text, p_sku text, r_sku text[], r_loc text[], r_free int[]) RETURNS int[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  n      int := coalesce(array_length(r_sku, 1), 0);
  pin    int[] := array_fill(0, ARRAY[greatest(coalesce(array_length(r_sku, 1), 0), 1)]);
  fr     record;
  f_pool int;
  f_left int;
  f_loc  text;
  p_take int;
  i      int;
BEGIN
  IF p_channel IS NULL THEN RETURN pin; END IF;
  FOR fr IN
    SELECT s.channel_id,
           CASE WHEN fs.sku IS NOT NULL THEN fs.fence_units ELSE s.fence_units END AS units,
           CASE WHEN fs.sku IS NOT NULL THEN fs.fence_pct ELSE s.fence_pct END AS pct,
           array_agg(l.location_id ORDER BY l.priority, l.location_id) AS locs
      FROM sales_channels s
      JOIN sales_channel_locations l USING (channel_id)
      LEFT JOIN sales_channel_fences fs ON fs.channel_id = s.channel_id AND fs.sku = p_sku
     WHERE s.channel_id <> p_channel
     GROUP BY s.channel_id, fs.sku, fs.fence_units, fs.fence_pct, s.fence_units, s.fence_pct
  LOOP
    CONTINUE WHEN fr.units IS NULL AND fr.pct IS NULL;
    f_pool := 0;
    FOR i IN 1..n LOOP
      IF r_sku[i] = p_sku AND r_loc[i] = ANY (fr.locs) THEN f_pool := f_pool + r_free[i]; END IF;
    END LOOP;
    IF fr.units IS NOT NULL THEN
      f_left := least(fr.units, f_pool);
    ELSE
      f_left := floor(f_pool::bigint * round(fr.pct * 100)::bigint / 10000);
    END IF;
    FOREACH f_loc IN ARRAY fr.locs LOOP
      EXIT WHEN f_left <= 0;
      FOR i IN 1..n LOOP
        IF r_sku[i] = p_sku AND r_loc[i] = f_loc THEN
          p_take := least(f_left, r_free[i]);
          pin[i] := pin[i] + p_take;
          f_left := f_left - p_take;
        END IF;
      END LOOP;
    END LOOP;
  END LOOP;
  RETURN pin;
END;
$$;

-- The row to take the next units of `p_sku` from, by the rule (0: none can give any). What a row
-- can give is its free units minus its pins. fewest_splits and single: the first location in
-- priority order that covers `p_need`; then (not single) priority order, or most units first
-- (ties by location id) for most_stock and fewest_splits. `p_locs` NULL: every location.
CREATE OR REPLACE FUNCTION sales_channel_pick(p_rule text, p_locs text[], p_sku text, r_sku text[], r_loc text[], r_free int[], p_pin int[], p_need int) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n    int := coalesce(array_length(r_sku, 1), 0);
  best int := 0;
  i    int;
BEGIN
  IF p_rule IN ('fewest_splits', 'single') THEN
    FOR i IN 1..n LOOP
      IF r_sku[i] = p_sku AND r_free[i] - p_pin[i] >= p_need AND r_loc[i] = ANY (p_locs)
         AND (best = 0 OR array_position(p_locs, r_loc[i]) < array_position(p_locs, r_loc[best])) THEN
        best := i;
      END IF;
    END LOOP;
    IF best > 0 OR p_rule = 'single' THEN RETURN best; END IF;
  END IF;
  FOR i IN 1..n LOOP
    IF r_sku[i] = p_sku AND r_free[i] - p_pin[i] > 0 AND (p_locs IS NULL OR r_loc[i] = ANY (p_locs)) THEN
      IF best = 0 THEN
        best := i;
      ELSIF p_rule = 'priority' THEN
        IF array_position(p_locs, r_loc[i]) < array_position(p_locs, r_loc[best]) THEN best := i; END IF;
      ELSIF r_free[i] - p_pin[i] > r_free[best] - p_pin[best] OR (r_free[i] - p_pin[i] = r_free[best] - p_pin[best] AND r_loc[i] < r_loc[best]) THEN
        best := i;
      END IF;
    END IF;
  END LOOP;
  RETURN best;
END;
$$;

-- purchase_write_back as in 0010_idempotency_per_customer.sql, with sales channels: a hold may
-- name its channel (h->>'channel'); its lines are then allocated only on the channel's locations,
-- by the channel's sourcing rule (the rules are purchase/domain/allocate.ts allocateFor, which an
-- integration test compares with this function). An unknown channel allocates nothing (the hold
-- is refused as insufficient). The order records its channel, and OrderPlaced carries it.
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
  ch        text;
  c_rule    text;
  c_locs    text[];
  pin       int[];
BEGIN
  SELECT array_agg(DISTINCT x->>'sku' ORDER BY x->>'sku')
    INTO v_skus
    FROM jsonb_array_elements(p_holds) AS hh, jsonb_array_elements(hh->'items') AS x;

  -- Lock the SKUs' rows in one order (sku, location_id) and take the figures.
  SELECT l.r_sku, l.r_loc, l.r_free INTO r_sku, r_loc, r_free FROM stock_lock_rows(v_skus) AS l;
  n := coalesce(array_length(r_sku, 1), 0);
  r_take := array_fill(0, ARRAY[greatest(n, 1)]);

  FOR h IN SELECT value FROM jsonb_array_elements(p_holds) LOOP
    failed := false;
    undo := '{}';
    undo_qty := '{}';
    lines := '[]'::jsonb;
    -- The sales channel's sourcing rule and locations (sales_channel_terms); none: every location, most stock first.
    ch := h->>'channel';
    SELECT t.rule, t.locs INTO c_rule, c_locs FROM sales_channel_terms(ch) AS t;
    FOR it IN SELECT value FROM jsonb_array_elements(h->'items') LOOP
      need := (it->>'qty')::int;
      allocs := '[]'::jsonb;
      pin := sales_channel_pins(ch, it->>'sku', r_sku, r_loc, r_free);
      WHILE need > 0 LOOP
        best := sales_channel_pick(c_rule, c_locs, it->>'sku', r_sku, r_loc, r_free, pin, need);
        IF best = 0 THEN
          failed := true;
          EXIT;
        END IF;
        took := least(need, r_free[best] - pin[best]);
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
      INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, expires_at, channel_id)
      VALUES ((h->>'id')::uuid, h->>'customer', 'reserved', h->>'idem', h->>'hash', (h->>'expires')::timestamptz, h->>'channel')
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
      accepted := accepted || jsonb_build_object('id', h->>'id', 'customer', h->>'customer', 'expires', h->>'expires', 'lines', lines, 'channel', h->'channel');
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
         || CASE WHEN a->>'channel' IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('channel', a->>'channel') END
    FROM jsonb_array_elements(accepted) AS a;

  RETURN results || (
    SELECT jsonb_agg(jsonb_build_object('id', a->>'id', 'ok', true, 'lines', a->'lines',
                     'versions', (SELECT jsonb_object_agg(l->>'sku', versions->(l->>'sku')) FROM jsonb_array_elements(a->'lines') AS l)))
      FROM jsonb_array_elements(accepted) AS a);
END;
$$;

-- hold_resize as in 0013_hold_lifecycle.sql, for an order sold on a sales channel: the extra units
-- of a change are allocated like the order's first units (its channel's locations, sourcing rule
-- and the other channels' fences; sales_channel_pick).
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
  c_rule    text;
  c_locs    text[];
  pin       int[];
BEGIN
  SELECT id, customer_id, status, expires_at, channel_id INTO o FROM orders WHERE id = v_order FOR UPDATE;
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
  SELECT l.r_sku, l.r_loc, l.r_free INTO r_sku, r_loc, r_free FROM stock_lock_rows(v_skus) AS l;
  n := coalesce(array_length(r_sku, 1), 0);
  r_delta := array_fill(0, ARRAY[greatest(n, 1)]);
  SELECT t.rule, t.locs INTO c_rule, c_locs FROM sales_channel_terms(o.channel_id) AS t;

  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') LOOP
    need := (ln->>'to')::int - (ln->>'from')::int;
    IF need > 0 THEN
      pin := sales_channel_pins(o.channel_id, ln->>'sku', r_sku, r_loc, r_free);
      WHILE need > 0 LOOP
        best := sales_channel_pick(c_rule, c_locs, ln->>'sku', r_sku, r_loc, r_free, pin, need);
        IF best = 0 THEN
          DELETE FROM order_changes WHERE id = v_id;
          RETURN jsonb_build_object('ok', false, 'reason', 'insufficient');
        END IF;
        took := least(need, r_free[best] - pin[best]);
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
