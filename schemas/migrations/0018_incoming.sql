-- Incoming stock, backorders and preorders (docs/incoming.md).
--
-- Expected receipts (purchase orders / ASNs) are rows of incoming_receipts; a SKU's policy says
-- whether it may be sold beyond its on-hand units (sku_backorder_policies). The figures the
-- pipeline needs ride on stock_levels itself, maintained in the same transaction as the change
-- that moves them, so they are versioned, captured by Debezium and folded into the Redis views
-- like on_hand (Postgres stays the truth; a rebuild reads them back):
--   incoming          open expected units at this location (sum of quantity - received_quantity
--                     over open receipt lines), kept by the receipts' trigger
--   next_eta          the earliest ETA of those open lines (NULL: none)
--   backordered       units promised to orders against incoming, counted at this location
--   backorder_policy  the SKU's policy (none | backorder | preorder), copied onto every row of the
--   backorder_limit   SKU by the policies' trigger, so the processor can compute the SKU's
--                     allowance from its rows alone (lib/contracts/backorder.ts)
-- The SKU's allowance (units the gate may sell beyond on-hand availability):
--   none       0
--   backorder  max(0, limit - backordered)                      (with or without a receipt)
--   preorder   max(0, min(incoming, coalesce(limit, incoming)) - backordered)
-- summed over the SKU's rows. It is computed by backorder_allowance() here, by
-- backorderAllowance() in TypeScript and by includes/backorder-allowance.lua in the views.

ALTER TABLE stock_levels
  ADD COLUMN IF NOT EXISTS incoming         int         NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS backordered      int         NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS next_eta         timestamptz,
  ADD COLUMN IF NOT EXISTS backorder_policy text        NOT NULL DEFAULT 'none',
  ADD COLUMN IF NOT EXISTS backorder_limit  int;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'stock_levels_incoming_nonneg') THEN
    ALTER TABLE stock_levels
      ADD CONSTRAINT stock_levels_incoming_nonneg CHECK (incoming >= 0),
      ADD CONSTRAINT stock_levels_backordered_nonneg CHECK (backordered >= 0),
      ADD CONSTRAINT stock_levels_backorder_policy_known CHECK (backorder_policy IN ('none', 'backorder', 'preorder')),
      ADD CONSTRAINT stock_levels_backorder_limit_nonneg CHECK (backorder_limit IS NULL OR backorder_limit >= 0),
      -- The CDC decoder reads next_eta as a date (stream-processors/domain/stock-change.ts): only
      -- dates it can carry (no 'infinity', nothing before 2000) may be stored.
      ADD CONSTRAINT stock_levels_next_eta_range CHECK (next_eta IS NULL OR next_eta BETWEEN '2000-01-01' AND '9999-12-31');
  END IF;
END;
$$;

-- ---- per-SKU policy

CREATE TABLE IF NOT EXISTS sku_backorder_policies (
  sku             text        PRIMARY KEY REFERENCES products (sku),
  policy          text        NOT NULL,
  -- backorder: the most units outstanding at once (required); preorder: optional cap on top of incoming.
  backorder_limit int,
  updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT sku_backorder_policies_policy_known CHECK (policy IN ('none', 'backorder', 'preorder')),
  CONSTRAINT sku_backorder_policies_limit_range CHECK (backorder_limit IS NULL OR backorder_limit BETWEEN 0 AND 1000000000),
  CONSTRAINT sku_backorder_policies_backorder_has_limit CHECK (policy <> 'backorder' OR backorder_limit IS NOT NULL)
);

-- A policy change is copied onto the SKU's stock rows (one versioned change each, in sorted
-- order like every multi-row writer): the views learn it through CDC like any stock change.
CREATE OR REPLACE FUNCTION sku_backorder_policies_copy() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_sku    text;
  v_policy text := 'none';
  v_limit  int;
BEGIN
  IF TG_OP = 'DELETE' THEN
    v_sku := OLD.sku;
  ELSE
    v_sku := NEW.sku;
    v_policy := NEW.policy;
    v_limit := NEW.backorder_limit;
  END IF;
  PERFORM 1 FROM stock_levels WHERE sku = v_sku ORDER BY location_id FOR UPDATE;
  UPDATE stock_levels SET backorder_policy = v_policy, backorder_limit = v_limit
   WHERE sku = v_sku AND (backorder_policy IS DISTINCT FROM v_policy OR backorder_limit IS DISTINCT FROM v_limit);
  RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS sku_backorder_policies_copy ON sku_backorder_policies;
CREATE TRIGGER sku_backorder_policies_copy AFTER INSERT OR UPDATE OR DELETE ON sku_backorder_policies
  FOR EACH ROW EXECUTE FUNCTION sku_backorder_policies_copy();

-- A new stock row starts with its SKU's policy (whoever inserts it).
CREATE OR REPLACE FUNCTION stock_levels_backorder_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  SELECT p.policy, p.backorder_limit INTO NEW.backorder_policy, NEW.backorder_limit FROM sku_backorder_policies p WHERE p.sku = NEW.sku;
  IF NOT FOUND THEN
    NEW.backorder_policy := 'none';
    NEW.backorder_limit := NULL;
  END IF;
  RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS stock_levels_backorder_terms ON stock_levels;
CREATE TRIGGER stock_levels_backorder_terms BEFORE INSERT ON stock_levels
  FOR EACH ROW EXECUTE FUNCTION stock_levels_backorder_terms();

-- The SKU's allowance from its summed figures (see the header; twin: lib/contracts/backorder.ts).
CREATE OR REPLACE FUNCTION backorder_allowance(p_policy text, p_limit int, p_incoming bigint, p_backordered bigint) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_policy
           WHEN 'backorder' THEN greatest(0, coalesce(p_limit, 0) - p_backordered)
           WHEN 'preorder' THEN greatest(0, least(p_incoming, coalesce(p_limit, p_incoming)) - p_backordered)
           ELSE 0
         END::int;
$$;

-- ---- expected receipts

CREATE TABLE IF NOT EXISTS incoming_receipts (
  receipt_id        text        NOT NULL,
  line              int         NOT NULL,
  sku               text        NOT NULL REFERENCES products (sku),
  location_id       text        NOT NULL REFERENCES locations (location_id),
  quantity          int         NOT NULL,
  received_quantity int         NOT NULL DEFAULT 0,
  eta               timestamptz NOT NULL,
  reference         text,
  status            text        NOT NULL DEFAULT 'open',
  created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (receipt_id, line),
  CONSTRAINT incoming_receipts_id_format CHECK (receipt_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
  CONSTRAINT incoming_receipts_line_range CHECK (line BETWEEN 1 AND 10000),
  CONSTRAINT incoming_receipts_quantity_range CHECK (quantity BETWEEN 1 AND 1000000000),
  CONSTRAINT incoming_receipts_received_range CHECK (received_quantity BETWEEN 0 AND 1000000000),
  CONSTRAINT incoming_receipts_status_known CHECK (status IN ('open', 'received', 'cancelled')),
  CONSTRAINT incoming_receipts_eta_range CHECK (eta BETWEEN '2000-01-01' AND '9999-12-31'),
  CONSTRAINT incoming_receipts_reference_length CHECK (reference IS NULL OR length(reference) <= 128)
);
CREATE INDEX IF NOT EXISTS incoming_receipts_open_idx ON incoming_receipts (sku, eta) WHERE status = 'open';

-- stock_levels.incoming / next_eta of one (sku, location) from its open receipt lines; creates
-- the stock row (on_hand 0) when there is none, so incoming is visible before the first unit.
CREATE OR REPLACE FUNCTION stock_refresh_incoming(p_sku text, p_loc text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_in  bigint;
  v_eta timestamptz;
BEGIN
  SELECT coalesce(sum(greatest(0, quantity - received_quantity)), 0), min(eta)
    INTO v_in, v_eta
    FROM incoming_receipts WHERE sku = p_sku AND location_id = p_loc AND status = 'open' AND quantity > received_quantity;
  UPDATE stock_levels SET incoming = v_in, next_eta = v_eta
   WHERE sku = p_sku AND location_id = p_loc AND (incoming <> v_in OR next_eta IS DISTINCT FROM v_eta);
  IF NOT FOUND AND v_in > 0 AND NOT EXISTS (SELECT 1 FROM stock_levels WHERE sku = p_sku AND location_id = p_loc) THEN
    INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock, version, incoming, next_eta)
    VALUES (p_sku, p_loc, 0, 0, 0, 0, v_in, v_eta)
    ON CONFLICT (sku, location_id) DO UPDATE SET incoming = excluded.incoming, next_eta = excluded.next_eta;
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION incoming_receipts_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM stock_refresh_incoming(OLD.sku, OLD.location_id); END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.sku <> OLD.sku OR NEW.location_id <> OLD.location_id) THEN
    PERFORM stock_refresh_incoming(NEW.sku, NEW.location_id);
  END IF;
  RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS incoming_receipts_refresh ON incoming_receipts;
CREATE TRIGGER incoming_receipts_refresh AFTER INSERT OR UPDATE OR DELETE ON incoming_receipts
  FOR EACH ROW EXECUTE FUNCTION incoming_receipts_refresh();

-- ---- backorders: units of an order line promised against incoming

CREATE TABLE IF NOT EXISTS backorders (
  order_id    uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  sku         text        NOT NULL,
  -- the stock row whose `backordered` counts these units (the earliest open receipt's location
  -- when the order was placed, else the SKU's first location)
  location_id text        NOT NULL,
  -- outstanding units (converted units leave; the row goes at 0)
  qty         int         NOT NULL,
  -- units backordered when the order was placed
  ordered_qty int         NOT NULL,
  -- the ETA promised when the order was placed (the earliest open receipt's; NULL: none expected)
  eta         timestamptz,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (order_id, sku),
  CONSTRAINT backorders_qty_positive CHECK (qty > 0 AND qty <= ordered_qty)
);
CREATE INDEX IF NOT EXISTS backorders_sku_idx ON backorders (sku, created_at);

-- The SKUs' backorder terms under the caller's row locks (call after stock_lock_rows): per SKU
-- the allowance, the row that will count new backorders and the ETA they get.
CREATE OR REPLACE FUNCTION backorder_terms(p_skus text[]) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_object_agg(t.sku, jsonb_build_object('left', t.allow, 'loc', t.loc, 'eta', t.eta)), '{}'::jsonb)
    FROM (
      SELECT s.sku,
             backorder_allowance(max(s.backorder_policy), max(s.backorder_limit), sum(s.incoming), sum(s.backordered)) AS allow,
             coalesce((SELECT r.location_id FROM incoming_receipts r
                        WHERE r.sku = s.sku AND r.status = 'open' AND r.quantity > r.received_quantity
                          AND EXISTS (SELECT 1 FROM stock_levels x WHERE x.sku = r.sku AND x.location_id = r.location_id)
                        ORDER BY r.eta, r.receipt_id, r.line LIMIT 1),
                      min(s.location_id)) AS loc,
             to_char((SELECT min(r.eta) FROM incoming_receipts r WHERE r.sku = s.sku AND r.status = 'open' AND r.quantity > r.received_quantity)
                     AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS eta
        FROM stock_levels s WHERE s.sku = ANY (p_skus)
       GROUP BY s.sku
    ) AS t;
$$;

-- purchase_write_back as in 0015_sales_channels.sql, with backorders: a line takes on-hand units
-- first (the channel's allocation, unchanged); what allocation cannot cover is backordered when
-- the SKU's allowance (backorder_terms, computed from the rows this call has locked, lowered by
-- the holds before it in the batch) covers it, else the hold is refused as insufficient. A
-- backordered line raises `backordered` on its terms' row and gets a backorders row with the ETA;
-- the line in the result and in OrderPlaced carries `backordered` and `eta`.
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
      -- The allowance this hold used is gone for the holds after it.
      FOR it IN SELECT jsonb_build_object('sku', k, 'qty', v::int) FROM jsonb_each_text(bo_used) AS e(k, v) LOOP
        bo := jsonb_set(bo, ARRAY[it->>'sku', 'left'], to_jsonb((bo->(it->>'sku')->>'left')::int - (it->>'qty')::int));
      END LOOP;
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

  RETURN results || (
    SELECT jsonb_agg(jsonb_build_object('id', a->>'id', 'ok', true, 'lines', a->'lines',
                     'versions', (SELECT jsonb_object_agg(l->>'sku', versions->(l->>'sku')) FROM jsonb_array_elements(a->'lines') AS l)))
      FROM jsonb_array_elements(accepted) AS a);
END;
$$;

-- ---- receiving

-- Creates or updates the lines of an expected receipt. p: {receiptId, reference, lines: [{line,
-- sku, locationId, quantity, eta, cancelled}]}. A line keeps its SKU and location once created
-- (a different one: line_conflict); its quantity may not fall below what was received; a
-- received or cancelled line cannot change. Unknown SKU / location: refused before anything is
-- written. Returns {ok, receipt} or {ok:false, reason, details}.
CREATE OR REPLACE FUNCTION receipt_upsert(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_id  text := p->>'receiptId';
  ln    jsonb;
  cur   record;
  v_skus text[];
BEGIN
  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') LOOP
    IF NOT EXISTS (SELECT 1 FROM products WHERE sku = ln->>'sku') THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'unknown_sku', 'details', jsonb_build_object('line', (ln->>'line')::int, 'sku', ln->>'sku'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM locations WHERE location_id = ln->>'locationId') THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'unknown_location', 'details', jsonb_build_object('line', (ln->>'line')::int, 'locationId', ln->>'locationId'));
    END IF;
  END LOOP;
  -- Stock rows before receipt rows, SKUs sorted: the lock order of every stock writer.
  SELECT array_agg(DISTINCT x->>'sku' ORDER BY x->>'sku') INTO v_skus FROM jsonb_array_elements(p->'lines') AS x;
  PERFORM stock_lock_rows(v_skus);
  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') ORDER BY (value->>'line')::int LOOP
    SELECT * INTO cur FROM incoming_receipts WHERE receipt_id = v_id AND line = (ln->>'line')::int FOR UPDATE;
    IF NOT FOUND THEN
      IF coalesce((ln->>'cancelled')::boolean, false) THEN CONTINUE; END IF;
      INSERT INTO incoming_receipts (receipt_id, line, sku, location_id, quantity, eta, reference)
      VALUES (v_id, (ln->>'line')::int, ln->>'sku', ln->>'locationId', (ln->>'quantity')::int, (ln->>'eta')::timestamptz, p->>'reference');
    ELSIF cur.sku <> ln->>'sku' OR cur.location_id <> ln->>'locationId' THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'line_conflict', 'message', 'a receipt line keeps its SKU and location',
                                'details', jsonb_build_object('line', cur.line, 'sku', cur.sku, 'locationId', cur.location_id));
    ELSIF cur.status <> 'open' THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'line_conflict', 'message', 'the line is ' || cur.status || ' and cannot change',
                                'details', jsonb_build_object('line', cur.line, 'status', cur.status));
    ELSIF coalesce((ln->>'cancelled')::boolean, false) THEN
      UPDATE incoming_receipts SET status = 'cancelled', updated_at = clock_timestamp() WHERE receipt_id = v_id AND line = cur.line;
    ELSIF (ln->>'quantity')::int < cur.received_quantity THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'line_conflict', 'message', 'the quantity cannot fall below what was received',
                                'details', jsonb_build_object('line', cur.line, 'receivedQuantity', cur.received_quantity));
    ELSE
      UPDATE incoming_receipts
         SET quantity = (ln->>'quantity')::int, eta = (ln->>'eta')::timestamptz, reference = coalesce(p->>'reference', reference),
             status = CASE WHEN (ln->>'quantity')::int <= received_quantity THEN 'received' ELSE 'open' END,
             updated_at = clock_timestamp()
       WHERE receipt_id = v_id AND line = cur.line;
    END IF;
  END LOOP;
  RETURN jsonb_build_object('ok', true, 'receipt', receipt_view(v_id));
END;
$$;

-- A receipt as the API shows it (NULL: no such receipt).
CREATE OR REPLACE FUNCTION receipt_view(p_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('receiptId', p_id, 'reference', max(reference),
           'lines', jsonb_agg(jsonb_build_object('line', line, 'sku', sku, 'locationId', location_id, 'quantity', quantity,
                              'receivedQuantity', received_quantity, 'status', status,
                              'eta', to_char(eta AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) ORDER BY line))
    FROM incoming_receipts WHERE receipt_id = p_id
  HAVING count(*) > 0;
$$;

-- Receives units of a receipt's lines. p: {receiptId, lines: [{line, quantity}]}. Per line: on
-- hand rises at the line's location, the line's received quantity rises (received once it
-- reaches the expected quantity; more than expected is accepted: the shelf holds what arrived),
-- which lowers `incoming` through the receipts' trigger. Then the SKU's backorders are converted,
-- oldest order first, while the location has sellable units: a reserved order's units become a
-- reservation there (backordered -> reserved), a confirmed order's leave the shelf (on_hand
-- falls, as confirm does). One BackorderConverted outbox row per converted order.
-- A line that does not exist (SQLSTATE IVR01) or is not open (IVR02) aborts the whole call:
-- nothing of it is applied.
CREATE OR REPLACE FUNCTION receipt_receive(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_id      text := p->>'receiptId';
  ln        jsonb;
  cur       record;
  b         record;
  v_skus    text[];
  v_free    int;
  took      int;
  converted jsonb := '[]'::jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM incoming_receipts WHERE receipt_id = v_id) THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'unknown_receipt');
  END IF;
  SELECT array_agg(DISTINCT r.sku ORDER BY r.sku) INTO v_skus
    FROM jsonb_array_elements(p->'lines') AS x JOIN incoming_receipts r ON r.receipt_id = v_id AND r.line = (x->>'line')::int;
  PERFORM stock_lock_rows(v_skus);
  FOR ln IN SELECT value FROM jsonb_array_elements(p->'lines') ORDER BY (value->>'line')::int LOOP
    SELECT * INTO cur FROM incoming_receipts WHERE receipt_id = v_id AND line = (ln->>'line')::int FOR UPDATE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'IVR01', MESSAGE = 'receipt_receive: no such line', DETAIL = jsonb_build_object('line', (ln->>'line')::int)::text;
    END IF;
    IF cur.status <> 'open' THEN
      RAISE EXCEPTION USING ERRCODE = 'IVR02', MESSAGE = 'receipt_receive: the line is not open', DETAIL = jsonb_build_object('line', cur.line, 'status', cur.status)::text;
    END IF;
    UPDATE incoming_receipts
       SET received_quantity = received_quantity + (ln->>'quantity')::int,
           status = CASE WHEN received_quantity + (ln->>'quantity')::int >= quantity THEN 'received' ELSE 'open' END,
           updated_at = clock_timestamp()
     WHERE receipt_id = v_id AND line = cur.line;
    -- The row exists: the receipt's trigger created it when the line was expected.
    INSERT INTO stock_levels AS s (sku, location_id, on_hand, version) VALUES (cur.sku, cur.location_id, (ln->>'quantity')::int, 0)
    ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = s.on_hand + excluded.on_hand;

    -- Convert the SKU's backorders, oldest order first, from this location's sellable units.
    FOR b IN
      SELECT bo.order_id, bo.location_id AS bo_loc, bo.qty, o.status, o.customer_id, o.created_at
        FROM backorders bo JOIN orders o ON o.id = bo.order_id
       WHERE bo.sku = cur.sku AND o.status IN ('reserved', 'confirmed')
       ORDER BY o.created_at, bo.order_id
       FOR UPDATE OF bo
    LOOP
      SELECT greatest(0, on_hand - reserved - safety_stock) INTO v_free FROM stock_levels WHERE sku = cur.sku AND location_id = cur.location_id;
      EXIT WHEN v_free <= 0;
      took := least(v_free, b.qty);
      UPDATE stock_levels SET backordered = greatest(0, backordered - took) WHERE sku = cur.sku AND location_id = b.bo_loc;
      IF b.status = 'reserved' THEN
        UPDATE stock_levels SET reserved = reserved + took WHERE sku = cur.sku AND location_id = cur.location_id;
        INSERT INTO reservations AS r (order_id, sku, location_id, qty) VALUES (b.order_id, cur.sku, cur.location_id, took)
        ON CONFLICT (order_id, sku, location_id) DO UPDATE SET qty = r.qty + excluded.qty;
      ELSE
        UPDATE stock_levels SET on_hand = on_hand - took WHERE sku = cur.sku AND location_id = cur.location_id;
      END IF;
      IF took = b.qty THEN
        DELETE FROM backorders WHERE order_id = b.order_id AND sku = cur.sku;
      ELSE
        UPDATE backorders SET qty = qty - took WHERE order_id = b.order_id AND sku = cur.sku;
      END IF;
      UPDATE orders SET updated_at = clock_timestamp() WHERE id = b.order_id;
      converted := converted || jsonb_build_object('orderId', b.order_id, 'customerId', b.customer_id, 'status', b.status, 'sku', cur.sku,
                                                   'locationId', cur.location_id, 'qty', took, 'stillBackordered', b.qty - took);
    END LOOP;
  END LOOP;

  -- One BackorderConverted per converted order, with the order's lines after the conversion (the
  -- shape of every orders.events payload) and what this receipt converted.
  INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
  SELECT gen_random_uuid(), 'orders', o.id::text, 'BackorderConverted',
         jsonb_build_object(
           'type', 'BackorderConverted', 'orderId', o.id, 'customerId', o.customer_id, 'status', o.status,
           'expiresAt', to_char(o.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'receiptId', v_id,
           'conversions', (SELECT jsonb_agg(c - 'orderId' - 'customerId' - 'status') FROM jsonb_array_elements(converted) AS c WHERE (c->>'orderId')::uuid = o.id),
           'items', (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'qty', l.qty, 'allocations',
                                        (SELECT coalesce(jsonb_agg(jsonb_build_object('locationId', r.location_id, 'qty', r.qty) ORDER BY r.location_id), '[]'::jsonb)
                                           FROM reservations r WHERE r.order_id = l.order_id AND r.sku = l.sku))
                                     || coalesce((SELECT jsonb_build_object('backordered', bk.qty, 'eta', to_char(bk.eta AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                                                    FROM backorders bk WHERE bk.order_id = l.order_id AND bk.sku = l.sku), '{}'::jsonb)
                                     ORDER BY l.sku)
                       FROM order_lines l WHERE l.order_id = o.id))
    FROM orders o
   WHERE o.id IN (SELECT DISTINCT (c->>'orderId')::uuid FROM jsonb_array_elements(converted) AS c)
   ORDER BY o.created_at, o.id;

  RETURN jsonb_build_object('ok', true, 'receipt', receipt_view(v_id), 'converted', converted);
END;
$$;
