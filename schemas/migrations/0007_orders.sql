-- Orders written back by the purchase path (see ../../docs/purchase-path.md).
--
-- An order's id is the id of the gate hold that accepted it: the gate (Redis) decides, the
-- write-back transaction records the decision here together with the stock reservation and the
-- OrderPlaced outbox row. The unique order id is what settles a hold whose gateway died: the
-- reaper inserts an `abandoned` row with the hold's id, and of the two inserts only one commits.
--
-- Status machine:  reserved -> confirmed | cancelled | expired ;  abandoned is terminal and never
-- visible to a client (its write-back never committed, so the client never got a 201).

CREATE TABLE IF NOT EXISTS orders (
  id               uuid        PRIMARY KEY,
  customer_id      text        NOT NULL,
  status           text        NOT NULL,
  idempotency_key  text,
  request_hash     text,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT orders_status_known CHECK (status IN ('reserved', 'confirmed', 'cancelled', 'expired', 'abandoned')),
  CONSTRAINT orders_customer_not_blank CHECK (length(customer_id) BETWEEN 1 AND 128)
);

-- Second line of defence for idempotency: should Redis lose its records, a replayed key still
-- cannot create a second order.
CREATE UNIQUE INDEX IF NOT EXISTS orders_idempotency_key_idx ON orders (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The expiry worker's scan: unconfirmed holds by deadline.
CREATE INDEX IF NOT EXISTS orders_reserved_expiry_idx ON orders (expires_at) WHERE status = 'reserved';

CREATE TABLE IF NOT EXISTS order_lines (
  order_id  uuid   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  sku       text   NOT NULL,
  qty       int    NOT NULL,
  -- The SKU's version right after the write-back (max over the rows it reserved on): the view
  -- includes this order once the SKU's view version reaches it.
  version   bigint NOT NULL,
  PRIMARY KEY (order_id, sku),
  CONSTRAINT order_lines_qty_positive CHECK (qty > 0)
);

-- Where the units of a line are held: one row per (order, sku, location) the allocation chose.
CREATE TABLE IF NOT EXISTS reservations (
  order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  sku          text NOT NULL,
  location_id  text NOT NULL,
  qty          int  NOT NULL,
  PRIMARY KEY (order_id, sku, location_id),
  CONSTRAINT reservations_qty_positive CHECK (qty > 0)
);
