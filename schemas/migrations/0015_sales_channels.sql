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
  c_pickup  text;
  c_locs    text[];
  pin       int[];
  fr        record;
  f_pool    int;
  f_left    int;
  p_take    int;
  f_loc     text;
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
    -- The sales channel's locations (priority order) and sourcing rule; no channel: every location, most stock first.
    ch := h->>'channel';
    c_rule := 'most_stock';
    c_locs := NULL;
    IF ch IS NOT NULL THEN
      SELECT s.sourcing, s.pickup_location,
             coalesce(array_agg(l.location_id ORDER BY l.priority, l.location_id) FILTER (WHERE l.location_id IS NOT NULL), '{}')
        INTO c_rule, c_pickup, c_locs
        FROM sales_channels s LEFT JOIN sales_channel_locations l USING (channel_id)
       WHERE s.channel_id = ch
       GROUP BY s.sourcing, s.pickup_location;
      IF NOT FOUND THEN
        c_rule := 'single';
        c_locs := '{}';
      ELSIF c_rule = 'single' THEN
        c_locs := ARRAY[c_pickup];
      END IF;
    END IF;
    FOR it IN SELECT value FROM jsonb_array_elements(h->'items') LOOP
      need := (it->>'qty')::int;
      allocs := '[]'::jsonb;
      -- Other channels' fences, pinned on their locations in their priority order (fencePins in
      -- lib/contracts/channels.ts): a channel's purchase never takes those units.
      pin := array_fill(0, ARRAY[greatest(n, 1)]);
      IF ch IS NOT NULL THEN
        FOR fr IN
          SELECT s.channel_id,
                 CASE WHEN fs.sku IS NOT NULL THEN fs.fence_units ELSE s.fence_units END AS units,
                 CASE WHEN fs.sku IS NOT NULL THEN fs.fence_pct ELSE s.fence_pct END AS pct,
                 array_agg(l.location_id ORDER BY l.priority, l.location_id) AS locs
            FROM sales_channels s
            JOIN sales_channel_locations l USING (channel_id)
            LEFT JOIN sales_channel_fences fs ON fs.channel_id = s.channel_id AND fs.sku = it->>'sku'
           WHERE s.channel_id <> ch
           GROUP BY s.channel_id, fs.sku, fs.fence_units, fs.fence_pct, s.fence_units, s.fence_pct
        LOOP
          CONTINUE WHEN fr.units IS NULL AND fr.pct IS NULL;
          f_pool := 0;
          FOR i IN 1..n LOOP
            IF r_sku[i] = it->>'sku' AND r_loc[i] = ANY (fr.locs) THEN f_pool := f_pool + r_free[i]; END IF;
          END LOOP;
          IF fr.units IS NOT NULL THEN
            f_left := least(fr.units, f_pool);
          ELSE
            f_left := floor(f_pool::bigint * round(fr.pct * 100)::bigint / 10000);
          END IF;
          FOREACH f_loc IN ARRAY fr.locs LOOP
            EXIT WHEN f_left <= 0;
            FOR i IN 1..n LOOP
              IF r_sku[i] = it->>'sku' AND r_loc[i] = f_loc THEN
                p_take := least(f_left, r_free[i]);
                pin[i] := pin[i] + p_take;
                f_left := f_left - p_take;
              END IF;
            END LOOP;
          END LOOP;
        END LOOP;
      END IF;
      WHILE need > 0 LOOP
        best := 0;
        -- fewest_splits and single: one location that covers the rest, highest priority first.
        IF c_rule IN ('fewest_splits', 'single') THEN
          FOR i IN 1..n LOOP
            IF r_sku[i] = it->>'sku' AND r_free[i] - pin[i] >= need AND r_loc[i] = ANY (c_locs)
               AND (best = 0 OR array_position(c_locs, r_loc[i]) < array_position(c_locs, r_loc[best])) THEN
              best := i;
            END IF;
          END LOOP;
        END IF;
        IF best = 0 AND c_rule <> 'single' THEN
          FOR i IN 1..n LOOP
            IF r_sku[i] = it->>'sku' AND r_free[i] - pin[i] > 0 AND (c_locs IS NULL OR r_loc[i] = ANY (c_locs)) THEN
              IF best = 0 THEN
                best := i;
              ELSIF c_rule = 'priority' THEN
                IF array_position(c_locs, r_loc[i]) < array_position(c_locs, r_loc[best]) THEN best := i; END IF;
              ELSIF r_free[i] - pin[i] > r_free[best] - pin[best] OR (r_free[i] - pin[i] = r_free[best] - pin[best] AND r_loc[i] < r_loc[best]) THEN
                best := i;
              END IF;
            END IF;
          END LOOP;
        END IF;
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
