-- Transactional outbox, in the shape Debezium's outbox event router expects
-- (io.debezium.transforms.outbox.EventRouter with its default column names):
--   id            -> event id, copied to the Kafka header `id` for consumer de-duplication
--   aggregatetype -> routes the event: topic `${aggregatetype}.events` (e.g. orders -> orders.events)
--   aggregateid   -> Kafka message key (ordering per aggregate, e.g. per order)
--   type          -> copied to the Kafka header `eventType`
--   payload       -> the message value (JSON, expanded by the router)
-- Rows are written in the same transaction as the business change. Debezium reads the INSERT
-- from the WAL, so a row may be deleted right after commit; `outbox_prune()` does that in bulk.

CREATE TABLE IF NOT EXISTS outbox (
  id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype  text        NOT NULL,
  aggregateid    text        NOT NULL,
  type           text        NOT NULL,
  payload        jsonb       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT outbox_aggregatetype_topic_safe CHECK (aggregatetype ~ '^[a-z][a-z0-9_-]{0,100}$')
);

CREATE INDEX IF NOT EXISTS outbox_created_at_idx ON outbox (created_at);

-- Deletes outbox rows older than the given age. The deletes reach the WAL but the connector
-- skips them (skipped.operations), so pruning never emits events.
CREATE OR REPLACE FUNCTION outbox_prune(older_than interval DEFAULT interval '1 hour') RETURNS bigint
LANGUAGE sql AS $$
  WITH gone AS (DELETE FROM outbox WHERE created_at < clock_timestamp() - older_than RETURNING 1)
  SELECT count(*) FROM gone;
$$;
