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
  };
}
