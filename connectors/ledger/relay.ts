/**
 * The movement relay (docs/ledger.md): reads the ledger's change events
 * (`cdc.public.stock_movements`, Debezium) and publishes each movement as Avro StockMovement on
 * `stock.movements`, key = sku, before its offsets move (at least once: a crash replays the
 * uncommitted tail, and `movementId` identifies a duplicate). An event that does not decode is
 * dead-lettered; the registry or Kafka being away fails the batch and kafkajs retries it.
 * Instances of one group (CONNECTOR_MOVEMENTS_GROUP_ID) share the partitions.
 */
import type { Kafka } from 'kafkajs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AvroCodec } from '../../lib/avro-registry.ts';
import { startKafkaStage, type RunningStage } from '../../lib/kafka-stage.ts';
import type { Logger } from '../../lib/logger.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { StockMovement } from '../../schemas/generated/avro-types.ts';
import { movementFromCdc } from './movement-event.ts';

export const DEFAULT_MOVEMENTS_GROUP_ID = 'invsync-movement-relay';

export interface MovementRelayDeps {
  kafka: Kafka;
  codec: AvroCodec<StockMovement>;
  logger: Logger;
  registry: Registry;
  groupId?: string;
  /** Private topics for tests; the platform's by default. */
  topics?: { source?: string; target?: string; dlq?: string };
  sessionTimeoutMs?: number;
}

export interface MovementRelay extends RunningStage {
  /** Movements published since start. */
  published(): number;
}

export async function startMovementRelay(deps: MovementRelayDeps): Promise<MovementRelay> {
  const target = deps.topics?.target ?? TOPICS.stockMovements;
  const groupId = deps.groupId ?? DEFAULT_MOVEMENTS_GROUP_ID;
  const log = deps.logger.child({ component: 'movement-relay', group: groupId });
  const metrics = {
    published: new Counter({ name: 'invsync_connectors_movements_published_total', help: 'Ledger movements published on stock.movements', registers: [deps.registry] }),
    dlq: new Counter({ name: 'invsync_connectors_movements_dlq_total', help: 'Ledger change events sent to inventory.dlq, by reason', labelNames: ['reason'], registers: [deps.registry] }),
    batchApply: new Histogram({
      name: 'invsync_connectors_movements_batch_seconds',
      help: 'Time to decode, encode and publish one batch of ledger change events',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [deps.registry],
    }),
    lag: new Gauge({ name: 'invsync_connectors_movements_lag', help: 'Ledger change events not yet relayed, per partition', labelNames: ['topic', 'partition'], registers: [deps.registry] }),
  };
  let published = 0;
  const stage = await startKafkaStage<StockMovement, Buffer>({
    kafka: deps.kafka,
    groupId,
    topic: deps.topics?.source ?? TOPICS.cdcStockMovements,
    dlqTopic: deps.topics?.dlq ?? TOPICS.dlq,
    fromBeginning: true,
    log,
    metrics,
    ...(deps.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    work: {
      reasons: { decode: 'undecodable ledger event', apply: 'movement not encodable' },
      decode: (message) => movementFromCdc(message.value),
      apply: (items) => Promise.all(items.map((m) => deps.codec.encode(m))),
      describe: (m) => ({ tags: { sku: m.sku, movementId: String(m.movementId) } }),
      async complete(done, ctx) {
        if (done.applied.length === 0) return;
        await ctx.producer.send({
          topic: target,
          acks: -1,
          messages: done.applied.map((a) => ({ key: a.item.sku, value: a.result, headers: { 'invsync.movement-id': String(a.item.movementId) } })),
        });
        published += done.applied.length;
        metrics.published.inc(done.applied.length);
      },
    },
  });
  return { ...stage, published: () => published };
}
