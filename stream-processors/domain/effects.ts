/**
 * Effects of an applied change, pure: the Avro records for `stock.deltas` and `stock.levels`.
 * The record types are generated from schemas/avro/*.avsc (never hand-written).
 */
import type { StockDelta, StockLevel } from '../../schemas/generated/avro-types.ts';

/**
 * `locationId`: the location whose row change caused the delta. A coalesced transaction that
 * changed several of the SKU's locations gives one delta per location, all with the SKU's
 * state after the transaction (so the same version).
 */
export function toStockDelta(summary: StockLevel, previousAvailable: number | null, locationId: string): StockDelta {
  const loc = summary.locations.find((l) => l.locationId === locationId);
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
