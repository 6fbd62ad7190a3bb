/** The outbound mappings' Prometheus metrics (registered on the connectors service's registry). Names are stable. */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface OutboundMetrics {
  messages: Counter<'mapping' | 'outcome'>;
  records: Counter<'mapping'>;
  lag: Gauge<'mapping' | 'partition'>;
}

export function createOutboundMetrics(registry: Registry): OutboundMetrics {
  return {
    messages: new Counter({
      name: 'invsync_connectors_outbound_messages_total',
      help: 'Source messages handled by outbound mappings, by mapping and outcome (mapped, skipped, dlq)',
      labelNames: ['mapping', 'outcome'],
      registers: [registry],
    }),
    records: new Counter({
      name: 'invsync_connectors_outbound_records_total',
      help: 'Mapped records produced to output topics, by mapping',
      labelNames: ['mapping'],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'invsync_connectors_outbound_lag',
      help: 'Messages between the last mapped offset and the source partition high watermark, by mapping',
      labelNames: ['mapping', 'partition'],
      registers: [registry],
    }),
  };
}
