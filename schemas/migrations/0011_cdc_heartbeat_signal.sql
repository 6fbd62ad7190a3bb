-- CDC hardening (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery): a heartbeat table and Debezium's signal table.
--
-- cdc_heartbeat: each connector's `heartbeat.action.query` updates its own row every
-- `heartbeat.interval.ms`. The table is in both publications, so the write reaches the connector
-- through its slot even when no captured table changes; the connector then confirms that LSN and
-- Postgres can recycle the WAL behind it. Without it an idle publication (the outbox at night)
-- pins all WAL written by everything else. The stock connector's heartbeat changes go to their own
-- topic (cdc.public.cdc_heartbeat), which no consumer reads; the outbox connector skips updates
-- (`skipped.operations`), so nothing reaches the outbox event router.
CREATE TABLE IF NOT EXISTS cdc_heartbeat (
  slot    text PRIMARY KEY,
  beat_at timestamptz NOT NULL DEFAULT now(),
  beats   bigint NOT NULL DEFAULT 0
);
INSERT INTO cdc_heartbeat (slot) VALUES ('invsync_stock_cdc'), ('invsync_outbox') ON CONFLICT (slot) DO NOTHING;

-- cdc_signal: Debezium's source signalling channel for the stock connector
-- (`signal.data.collection` = public.cdc_signal), in the shape Debezium requires (id, type, data).
-- The CDC watchdog inserts an `execute-snapshot` row after a lost replication slot, and the
-- connector's incremental snapshot writes its chunk watermarks here. It must be in the stock
-- publication: the connector reads signals from its own change stream.
CREATE TABLE IF NOT EXISTS cdc_signal (
  id   varchar(64) PRIMARY KEY,
  type varchar(32) NOT NULL,
  data varchar(2048) NULL
);

-- cdc_slot_recovery: the watchdog's record of a slot loss being recovered, so that a processor
-- that dies half-way leaves the recovery to the next one (one row per slot; see
-- stream-processors/cdc-watchdog.ts).
CREATE TABLE IF NOT EXISTS cdc_slot_recovery (
  slot         text PRIMARY KEY,
  reason       text NOT NULL,
  detected_at  timestamptz NOT NULL DEFAULT now(),
  stage        text NOT NULL CHECK (stage IN ('await_slot', 'snapshotting', 'done')),
  signal_id    varchar(64),
  signalled_at timestamptz,
  -- snapshot-window-close watermarks in cdc_signal when the snapshot was requested
  window_baseline integer,
  finished_at  timestamptz
);
