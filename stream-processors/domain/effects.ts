/**
 * Effects of an applied change, pure: the Avro records for `stock.deltas` and `stock.levels`.
 * The record types are generated from schemas/avro/*.avsc (never hand-written).
 */
import type { StockDelta, StockLevel } from '../../schemas/generated/avro-types.ts';
import type { RowChange } from './fold.ts';

export function toStockDelta(summary: StockLevel, previousAvailable: number | null, change: RowChange): StockDelta {
  const loc = summary.locations.find((l) => l.locationId === change.locationId);
  return {
    sku: summary.sku,
    available: summary.available,
    previousAvailable,
    onHand: summary.onHand,
    reserved: summary.reserved,
    safetyStock: summary.safetyStock,
    version: summary.version,
    deleted: summary.deleted,
    commitTs: summary.commitTs,
    locationId: change.locationId,
    location: loc ?? null,
    channels: summary.channels,
  };
}
