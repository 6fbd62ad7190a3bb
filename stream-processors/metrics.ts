/** The stock processor's Prometheus metrics. Names are stable: dashboards and alerts use them. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ProcessorMetrics {
  registry: Registry;
  events: Counter<'outcome'>;
  dlq: Counter<'reason'>;
  batchApply: Histogram;
  commitToView: Histogram;
  lag: Gauge<'topic' | 'partition'>;
  drift: Gauge;
  reconcileRuns: Counter<'result'>;
  alerts: Counter<'kind'>;
}

export function createProcessorMetrics({ defaults = true }: { defaults?: boolean } = {}): ProcessorMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'invsync_processor_' });
  return {
    registry,
    events: new Counter({
      name: 'invsync_processor_events_total',
      help: 'CDC events handled, by outcome: applied, duplicate, stale, tombstone, dlq',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    dlq: new Counter({
      name: 'invsync_processor_dlq_total',
      help: 'Events sent to inventory.dlq, by reason class',
      labelNames: ['reason'],
      registers: [registry],
    }),
    batchApply: new Histogram({
      name: 'invsync_processor_batch_apply_seconds',
      help: 'Time to apply one batch to Redis and publish its effects',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commitToView: new Histogram({
      name: 'invsync_processor_commit_to_view_seconds',
      help: 'Postgres commit to the Redis view updated, per applied event',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'invsync_processor_consumer_lag',
      help: 'Messages between the last processed offset and the partition high watermark',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    drift: new Gauge({
      name: 'invsync_views_drift_rows',
      help: 'Rows that differed between Redis and Postgres at the last reconciliation',
      registers: [registry],
    }),
    reconcileRuns: new Counter({
      name: 'invsync_views_reconcile_runs_total',
      help: 'Reconciliation runs, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    alerts: new Counter({
      name: 'invsync_processor_alerts_total',
      help: 'Stock alerts published on stock.alerts, by kind (a re-emission after a retry counts again)',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}

/**
 * Replication-slot health and the CDC watchdog (stream-processors/cdc-watchdog.ts). Alert
 * thresholds: docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery.
 */
export interface CdcMetrics {
  present: Gauge<'slot'>;
  active: Gauge<'slot'>;
  retained: Gauge<'slot'>;
  flushLag: Gauge<'slot'>;
  safeWalSize: Gauge<'slot'>;
  walStatus: Gauge<'slot' | 'status'>;
  health: Gauge<'slot'>;
  losses: Counter<'slot' | 'reason'>;
  recoveries: Counter<'slot' | 'result'>;
  watchdogRuns: Counter<'result'>;
}

export function createCdcMetrics(registry: Registry): CdcMetrics {
  const registers = [registry];
  return {
    present: new Gauge({ name: 'invsync_cdc_slot_present', help: '1 while the replication slot exists', labelNames: ['slot'], registers }),
    active: new Gauge({ name: 'invsync_cdc_slot_active', help: '1 while a connector streams from the slot', labelNames: ['slot'], registers }),
    retained: new Gauge({ name: 'invsync_cdc_slot_retained_wal_bytes', help: 'WAL the slot keeps from being recycled (current LSN - restart_lsn)', labelNames: ['slot'], registers }),
    flushLag: new Gauge({ name: 'invsync_cdc_slot_confirmed_flush_lag_bytes', help: 'Current LSN - confirmed_flush_lsn: WAL not yet confirmed by the connector', labelNames: ['slot'], registers }),
    safeWalSize: new Gauge({ name: 'invsync_cdc_slot_safe_wal_size_bytes', help: 'WAL that can still be written before the slot is invalidated (absent without max_slot_wal_keep_size)', labelNames: ['slot'], registers }),
    walStatus: new Gauge({ name: 'invsync_cdc_slot_wal_status', help: '1 for the slot\'s current wal_status (reserved, extended, unreserved, lost, missing)', labelNames: ['slot', 'status'], registers }),
    health: new Gauge({ name: 'invsync_cdc_slot_health', help: '0 ok, 1 warning, 2 critical (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery)', labelNames: ['slot'], registers }),
    losses: new Counter({ name: 'invsync_cdc_slot_losses_total', help: 'Slot losses detected (missing or wal_status lost)', labelNames: ['slot', 'reason'], registers }),
    recoveries: new Counter({ name: 'invsync_cdc_slot_recoveries_total', help: 'Slot recoveries finished, by result (ok, timeout)', labelNames: ['slot', 'result'], registers }),
    watchdogRuns: new Counter({ name: 'invsync_cdc_watchdog_runs_total', help: 'Watchdog ticks, by result (ok, standby: another processor holds the lock, error)', labelNames: ['result'], registers }),
  };
}
