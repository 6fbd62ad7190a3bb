/**
 * The stock fold, pure: (SKU state, change) -> (new state, outcome). No Kafka, Redis or Postgres.
 *
 * This is the specification the Redis script `lua/apply-rows-4.lua` implements atomically (an
 * integration test runs both on the same sequences and compares). Rules:
 *   - A row's position in its history is its rank: version * 2, plus 1 for a delete. A delete
 *     carries the version of the row it removes, so at equal version it supersedes the upsert.
 *   - A change applies only when its rank is higher than the stored row's; equal rank is a
 *     duplicate (no change, but its effects may be re-emitted: at-least-once), lower is stale.
 *   - A SKU's version is the highest row version it has seen; its `deleted` flag is set when the
 *     highest-ranked row is a deletion. (version, deleted) orders a SKU's states: at equal
 *     version a deleted=true state is the newer one.
 */
import type { LocationLevel } from '../../schemas/generated/avro-types.ts';

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

/** A location's state in a SKU summary: exactly the Avro LocationLevel (generated type). */
export type LocationSummary = LocationLevel;

export interface SkuSummary {
  sku: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
  available: number;
  version: number;
  deleted: boolean;
  commitTs: number;
  locations: LocationSummary[];
}

export type Outcome = 'applied' | 'duplicate' | 'stale';

/** What the apply step needs to know about one change (decoded CDC event or Postgres row). */
export interface RowChange {
  sku: string;
  locationId: string;
  deleted: boolean;
  onHand: number;
  reserved: number;
  safetyStock: number;
  version: number;
  commitTs: number;
}

export function rank(version: number, deleted: boolean): number {
  return version * 2 + (deleted ? 1 : 0);
}

export function availableOf(r: { onHand: number; reserved: number; safetyStock: number }): number {
  return Math.max(0, r.onHand - r.reserved - r.safetyStock);
}

export function compare(current: RowState | undefined, change: RowChange): Outcome {
  if (!current) return 'applied';
  const a = rank(change.version, change.deleted);
  const b = rank(current.version, current.deleted);
  return a > b ? 'applied' : a === b ? 'duplicate' : 'stale';
}

export function foldRow(rows: SkuRows, change: RowChange): { rows: SkuRows; outcome: Outcome } {
  const outcome = compare(rows[change.locationId], change);
  if (outcome !== 'applied') return { rows, outcome };
  const row: RowState = change.deleted
    ? { onHand: 0, reserved: 0, safetyStock: 0, version: change.version, deleted: true, commitTs: change.commitTs }
    : {
        onHand: change.onHand,
        reserved: change.reserved,
        safetyStock: change.safetyStock,
        version: change.version,
        deleted: false,
        commitTs: change.commitTs,
      };
  return { rows: { ...rows, [change.locationId]: row }, outcome };
}

/** Totals over live locations. Per-location availability is summed (each location sells its own). */
export function summarize(sku: string, rows: SkuRows): SkuSummary {
  let onHand = 0;
  let reserved = 0;
  let safetyStock = 0;
  let available = 0;
  let version = 0;
  let topRank = -1;
  let deleted = false;
  let commitTs = 0;
  const locations: LocationSummary[] = [];
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
  return { sku, onHand, reserved, safetyStock, available, version, deleted, commitTs, locations };
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

/** A decoded CDC event as a row change for the apply step. */
export function fromStockChange(c: {
  sku: string;
  locationId: string;
  row: { onHand: number; reserved: number; safetyStock: number } | null;
  version: number;
  commitTs: number;
}): RowChange {
  return {
    sku: c.sku,
    locationId: c.locationId,
    deleted: c.row === null,
    onHand: c.row?.onHand ?? 0,
    reserved: c.row?.reserved ?? 0,
    safetyStock: c.row?.safetyStock ?? 0,
    version: c.version,
    commitTs: c.commitTs,
  };
}
