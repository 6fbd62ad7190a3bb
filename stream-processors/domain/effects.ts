/**
 * Effects of an applied change, pure: the Avro records for `stock.deltas` and `stock.levels`.
 * The record types are generated from schemas/avro/*.avsc (never hand-written).
 */
import type { StockDelta, StockLevel } from '../../schemas/generated/avro-types.ts';

/**
 * `locationId`: the location whose row change caused the delta, or null when a coalesced
 * transaction changed several of the SKU's locations (the schema's "not attributable to one
 * location"; the delta's SKU figures are the transaction's committed state either way).
 */
export function toStockDelta(summary: StockLevel, previousAvailable: number | null, locationId: string | null): StockDelta {
  const loc = locationId === null ? undefined : summary.locations.find((l) => l.locationId === locationId);
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
    locationId,
    location: loc ?? null,
    channels: summary.channels,
  };
}
