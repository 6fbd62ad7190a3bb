/**
 * The stock view as stored in Redis, shared by its writer (stream-processors, through
 * lua/apply-rows-4.lua) and its readers (the gateway, reconciliation): how a row is encoded in
 * the `<p>:{<sku>}:rows` hash, the (version, deleted) order of states, and how a SKU's rows add
 * up to the state every consumer sees, which is exactly the Avro `StockLevel` record (generated
 * type, never a hand copy). Pure: no Redis client.
 */
import type { LocationLevel, StockLevel } from '../../schemas/generated/avro-types.ts';

export interface RowState {
  onHand: number;
  reserved: number;
  safetyStock: number;
  version: number;
  deleted: boolean;
  commitTs: number;
}

/** A SKU's rows by location, as stored. */
export type SkuRows = Record<string, RowState>;

/**
 * A state's position in its history: version * 2, plus 1 for a delete (a delete carries the
 * version of the row it removes, so at equal version it supersedes the upsert).
 */
export function rank(version: number, deleted: boolean): number {
  return version * 2 + (deleted ? 1 : 0);
}

export function availableOf(r: { onHand: number; reserved: number; safetyStock: number }): number {
  return Math.max(0, r.onHand - r.reserved - r.safetyStock);
}

/** Totals over live locations. Per-location availability is summed (each location sells its own). */
export function summarize(sku: string, rows: SkuRows): StockLevel {
  let onHand = 0;
  let reserved = 0;
  let safetyStock = 0;
  let available = 0;
  let version = 0;
  let topRank = -1;
  let deleted = false;
  let commitTs = 0;
  const locations: LocationLevel[] = [];
  for (const locationId of Object.keys(rows).sort()) {
    const r = rows[locationId]!;
    const rk = rank(r.version, r.deleted);
    if (rk > topRank) {
      topRank = rk;
      deleted = r.deleted;
    }
    version = Math.max(version, r.version);
    commitTs = Math.max(commitTs, r.commitTs);
    if (r.deleted) continue;
    const a = availableOf(r);
    onHand += r.onHand;
    reserved += r.reserved;
    safetyStock += r.safetyStock;
    available += a;
    locations.push({ locationId, onHand: r.onHand, reserved: r.reserved, safetyStock: r.safetyStock, available: a, version: r.version });
  }
  // Field order matters: the HTTP API serialises this object as it is.
  return { sku, onHand, reserved, safetyStock, available, version, deleted, commitTs, locations, channels: null };
}

/** Serialised row as stored in Redis: "onHand|reserved|safetyStock|version|deleted|commitTs". */
export function encodeRow(r: RowState): string {
  return `${r.onHand}|${r.reserved}|${r.safetyStock}|${r.version}|${r.deleted ? 1 : 0}|${r.commitTs}`;
}

export function decodeRow(text: string): RowState | undefined {
  const parts = text.split('|');
  if (parts.length !== 6) return undefined;
  const [onHand, reserved, safetyStock, version, deleted, commitTs] = parts.map(Number) as [number, number, number, number, number, number];
  if ([onHand, reserved, safetyStock, version, commitTs].some((n) => !Number.isFinite(n))) return undefined;
  return { onHand, reserved, safetyStock, version, deleted: deleted === 1, commitTs };
}

export function decodeRows(hash: Record<string, string>): SkuRows {
  const rows: SkuRows = {};
  for (const [loc, text] of Object.entries(hash)) {
    const r = decodeRow(text);
    if (r) rows[loc] = r;
  }
  return rows;
}
