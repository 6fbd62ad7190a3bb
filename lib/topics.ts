/**
 * Kafka topic names. The public ones are fixed by the product brief; the CDC topic follows from
 * the connector's `topic.prefix` in debezium/connectors/stock-cdc.json (a unit test checks both
 * agree).
 */
export const TOPICS = {
  /** Raw Debezium change events for public.stock_levels (JSON, no embedded schema). */
  cdcStockLevels: 'cdc.public.stock_levels',
  stockDeltas: 'stock.deltas',
  stockLevels: 'stock.levels',
  /** Avro StockAlert, key = sku: edge-triggered low / out of / back in stock alerts. */
  stockAlerts: 'stock.alerts',
  /** Avro StockMovement, key = sku: the movement ledger (docs/ledger.md), at least once. */
  stockMovements: 'stock.movements',
  ordersEvents: 'orders.events',
  stockAdjustments: 'stock.adjustments',
  dlq: 'inventory.dlq',
} as const;

/** The outbox event router sends a row with aggregatetype `x` to topic `x.events`. */
export function outboxTopic(aggregateType: string): string {
  return `${aggregateType}.events`;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  config: Record<string, string>;
}

/**
 * The platform's topics, created with their intended settings at start-up rather than left to
 * broker auto-creation: `stock.levels` must be compacted from its first record, and consumers
 * must be able to subscribe before the first change was ever captured.
 */
export const TOPIC_SPECS: TopicSpec[] = [
  { topic: TOPICS.cdcStockLevels, partitions: 6, config: {} },
  { topic: TOPICS.stockDeltas, partitions: 6, config: {} },
  { topic: TOPICS.stockLevels, partitions: 6, config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' } },
  { topic: TOPICS.stockAlerts, partitions: 6, config: {} },
  { topic: TOPICS.stockMovements, partitions: 6, config: {} },
  { topic: TOPICS.ordersEvents, partitions: 6, config: {} },
  { topic: TOPICS.stockAdjustments, partitions: 6, config: {} },
  { topic: TOPICS.dlq, partitions: 1, config: { 'retention.ms': String(30 * 24 * 3600 * 1000) } },
];
