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
  ordersEvents: 'orders.events',
  stockAdjustments: 'stock.adjustments',
  dlq: 'inventory.dlq',
} as const;

/** The outbox event router sends a row with aggregatetype `x` to topic `x.events`. */
export function outboxTopic(aggregateType: string): string {
  return `${aggregateType}.events`;
}
