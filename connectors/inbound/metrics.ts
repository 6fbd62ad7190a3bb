/** The inbound connector's Prometheus metrics. Names are stable: dashboards and alerts use them. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface InboundMetrics {
  registry: Registry;
  adjustments: Counter<'outcome' | 'kind'>;
  dlq: Counter<'reason'>;
  batchApply: Histogram;
  produceToCommit: Histogram;
  retries: Counter;
  lag: Gauge<'topic' | 'partition'>;
}

export function createInboundMetrics({ defaults = true, registry = new Registry() }: { defaults?: boolean; registry?: Registry } = {}): InboundMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'invsync_connectors_' });
  return {
    registry,
    adjustments: new Counter({
      name: 'invsync_connectors_adjustments_total',
      help: 'Inbound adjustments handled, by outcome (applied, duplicate, dlq) and kind (unknown when undecodable)',
      labelNames: ['outcome', 'kind'],
      registers: [registry],
    }),
    dlq: new Counter({
      name: 'invsync_connectors_dlq_total',
      help: 'Inbound adjustments sent to inventory.dlq, by reason code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    batchApply: new Histogram({
      name: 'invsync_connectors_batch_apply_seconds',
      help: 'Time to decode, apply (one Postgres transaction) and dead-letter one batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    produceToCommit: new Histogram({
      name: 'invsync_connectors_produce_to_commit_seconds',
      help: 'Kafka message timestamp (producer) to the Postgres commit that applied the adjustment',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'invsync_connectors_apply_retries_total',
      help: 'Apply transactions retried after a deadlock, serialization failure or concurrent insert',
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'invsync_connectors_consumer_lag',
      help: 'Messages between the last processed offset and the partition high watermark',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
  };
}
