-- Kits and bundles (docs/kits.md): a kit SKU made of component SKUs with quantities. A kit holds
-- no stock of its own: its availability is the minimum over its components of
-- floor(component available / quantity) (per sales channel too), computed by the gateway from the
-- components' views, and a kit purchase is expanded into its components before the gate, so the
-- gate reserves the components atomically and confirm / cancel / expiry act on them.
--
-- Refused by the database, so nothing changes: a component that is not a product (foreign key), a
-- kit that contains itself, a kit used as a component of another kit (so no kit can contain
-- itself through another), a quantity outside 1..1000, more than 20 components.
--
-- Every statement bumps the one row of kit_config (statement triggers, the pattern of
-- sales_channel_config in 0015): gateways poll that version and reload the catalog
-- (lib/kit-config.ts).

CREATE TABLE IF NOT EXISTS kits (
  sku          text        PRIMARY KEY REFERENCES products (sku),
  name         text,
  -- The base of the kit's version (kit version = base + the sum of its components' versions):
  -- raised by every change of the kit's components by more than any version sum the old
  -- definition can have given, so a kit's version never goes down (docs/kits.md, "Versions").
  version_base bigint      NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS kit_components (
  kit_sku       text NOT NULL REFERENCES kits (sku) ON DELETE CASCADE,
  component_sku text NOT NULL REFERENCES products (sku),
  quantity      int  NOT NULL,
  PRIMARY KEY (kit_sku, component_sku),
  CONSTRAINT kit_components_not_itself CHECK (kit_sku <> component_sku),
  CONSTRAINT kit_components_quantity_range CHECK (quantity BETWEEN 1 AND 1000)
);
CREATE INDEX IF NOT EXISTS kit_components_by_component ON kit_components (component_sku);

CREATE TABLE IF NOT EXISTS kit_config (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint  NOT NULL DEFAULT 0
);
INSERT INTO kit_config (id, version) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION kit_config_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE kit_config SET version = version + 1 WHERE id;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS kits_bump ON kits;
CREATE TRIGGER kits_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kits
  FOR EACH STATEMENT EXECUTE FUNCTION kit_config_bump();
DROP TRIGGER IF EXISTS kit_components_bump ON kit_components;
CREATE TRIGGER kit_components_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kit_components
  FOR EACH STATEMENT EXECUTE FUNCTION kit_config_bump();

-- No nesting: a kit is never a component, and a component is never a kit. Together with the CHECK
-- above, no kit contains itself, directly or through another kit. Writers of the catalog are
-- serialised (a transaction-scoped advisory lock) so two concurrent statements cannot each make
-- the other's check stale; the queries below run after the lock, on a fresh snapshot (READ
-- COMMITTED, a VOLATILE function).
CREATE OR REPLACE FUNCTION kit_components_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kit_sku = NEW.component_sku THEN
    RAISE EXCEPTION 'kit % cannot contain itself', NEW.kit_sku
      USING ERRCODE = 'check_violation', CONSTRAINT = 'kit_components_not_itself';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('invsync.kits'));
  IF EXISTS (SELECT 1 FROM kits WHERE sku = NEW.component_sku) THEN
    RAISE EXCEPTION 'kit %: component % is itself a kit (kits cannot contain kits)', NEW.kit_sku, NEW.component_sku
      USING ERRCODE = 'check_violation', CONSTRAINT = 'kit_components_no_nesting';
  END IF;
  IF (SELECT count(*) FROM kit_components WHERE kit_sku = NEW.kit_sku AND component_sku <> NEW.component_sku) >= 20 THEN
    RAISE EXCEPTION 'kit %: at most 20 components', NEW.kit_sku
      USING ERRCODE = 'check_violation', CONSTRAINT = 'kit_components_at_most_20';
  END IF;
  RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS kit_components_check ON kit_components;
CREATE TRIGGER kit_components_check BEFORE INSERT OR UPDATE ON kit_components
  FOR EACH ROW EXECUTE FUNCTION kit_components_check();

CREATE OR REPLACE FUNCTION kits_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('invsync.kits'));
  IF EXISTS (SELECT 1 FROM kit_components WHERE component_sku = NEW.sku) THEN
    RAISE EXCEPTION 'SKU % is a component of a kit and cannot be a kit itself (kits cannot contain kits)', NEW.sku
      USING ERRCODE = 'check_violation', CONSTRAINT = 'kit_components_no_nesting';
  END IF;
  RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS kits_check ON kits;
CREATE TRIGGER kits_check BEFORE INSERT OR UPDATE OF sku ON kits
  FOR EACH ROW EXECUTE FUNCTION kits_check();

-- A change of a kit's components raises its version base past every version sum the old
-- definition can have produced: every version is at most the sequence's current value, so
-- (components before and after) x nextval bounds them all.
CREATE OR REPLACE FUNCTION kit_components_rebase() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  k text := CASE WHEN TG_OP = 'DELETE' THEN OLD.kit_sku ELSE NEW.kit_sku END;
  n int;
BEGIN
  SELECT count(*) + 1 INTO n FROM kit_components WHERE kit_sku = k;
  UPDATE kits SET version_base = version_base + n * nextval('stock_version_seq') + 1, updated_at = clock_timestamp() WHERE sku = k;
  RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS kit_components_rebase ON kit_components;
CREATE TRIGGER kit_components_rebase AFTER INSERT OR UPDATE OR DELETE ON kit_components
  FOR EACH ROW EXECUTE FUNCTION kit_components_rebase();

-- What a customer bought as kits: the order's lines are the components (reserved, confirmed,
-- cancelled and expired like any line); these rows remember the kits they came from.
CREATE TABLE IF NOT EXISTS order_kits (
  order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  kit_sku  text NOT NULL,
  qty      int  NOT NULL CHECK (qty > 0),
  -- The kit's components as sold: [{sku, qty}] per kit unit.
  components jsonb NOT NULL,
  PRIMARY KEY (order_id, kit_sku)
);

-- OrderPlaced of an order with kits names them: purchase_write_back_kits puts the kits of the
-- batch's holds in the transaction-local setting invsync.order_kits ({holdId: [kit lines]}), and
-- this trigger adds them to the OrderPlaced rows purchase_write_back inserts. Other outbox rows,
-- and every row outside such a transaction, are left as they are.
CREATE OR REPLACE FUNCTION outbox_order_kits() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  s text := current_setting('invsync.order_kits', true);
  k jsonb;
BEGIN
  IF s IS NULL OR s = '' OR NEW.type <> 'OrderPlaced' OR NEW.aggregatetype <> 'orders' THEN
    RETURN NEW;
  END IF;
  k := s::jsonb -> NEW.aggregateid;
  IF k IS NOT NULL THEN
    NEW.payload := NEW.payload || jsonb_build_object('kits', k);
  END IF;
  RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS outbox_order_kits ON outbox;
CREATE TRIGGER outbox_order_kits BEFORE INSERT ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_order_kits();

-- purchase_write_back (0015) for a batch in which some holds bought kits (h->'kits':
-- [{sku, qty, components:[{sku, qty}]}]; their items are already the expanded components): the
-- same write-back in the same transaction, plus the order_kits rows of the holds it accepted.
CREATE OR REPLACE FUNCTION purchase_write_back_kits(p_holds jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  out jsonb;
BEGIN
  PERFORM set_config('invsync.order_kits',
    coalesce((SELECT jsonb_object_agg(h->>'id', h->'kits') FROM jsonb_array_elements(p_holds) AS h
               WHERE jsonb_typeof(h->'kits') = 'array' AND jsonb_array_length(h->'kits') > 0), '{}'::jsonb)::text, true);
  out := purchase_write_back(p_holds);
  PERFORM set_config('invsync.order_kits', '', true);
  INSERT INTO order_kits (order_id, kit_sku, qty, components)
  SELECT (h->>'id')::uuid, k->>'sku', (k->>'qty')::int, k->'components'
    FROM jsonb_array_elements(p_holds) AS h, jsonb_array_elements(coalesce(h->'kits', '[]'::jsonb)) AS k
   WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(out) AS r WHERE r->>'id' = h->>'id' AND (r->>'ok')::boolean);
  RETURN out;
END;
$$;
