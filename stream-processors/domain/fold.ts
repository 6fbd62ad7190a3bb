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
import { rank, type RowIncoming, type RowState, type SkuRows } from '../../lib/contracts/stock-view.ts';

// The view's storage format and summary rule are a contract with its readers (the gateway,
// reconciliation): they live in lib/contracts/stock-view.ts and are re-exported for the fold's users.
export { availableOf, decodeRow, decodeRows, encodeRow, rank, summarize, type RowState, type SkuRows } from '../../lib/contracts/stock-view.ts';

export type Outcome = 'applied' | 'duplicate' | 'stale';

/** What the apply step needs to know about one change (decoded CDC event or Postgres row). */
export interface RowChange extends RowIncoming {
  sku: string;
  locationId: string;
  deleted: boolean;
  onHand: number;
  reserved: number;
  safetyStock: number;
  version: number;
  commitTs: number;
  /** The Postgres transaction (Debezium `source.txId`); changes of one transaction may be coalesced (domain/coalesce.ts). */
  txId?: number | null;
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
    ? { onHand: 0, reserved: 0, safetyStock: 0, version: change.version, deleted: true, commitTs: change.commitTs, ...NO_INCOMING }
    : {
        onHand: change.onHand,
        reserved: change.reserved,
        safetyStock: change.safetyStock,
        version: change.version,
        deleted: false,
        commitTs: change.commitTs,
        ...incomingFields(change),
      };
  return { rows: { ...rows, [change.locationId]: row }, outcome };
}

/** A row's incoming figures with their defaults filled in (every stored row carries all five). */
export const NO_INCOMING: Required<RowIncoming> = Object.freeze({ incoming: 0, backordered: 0, nextEta: 0, policy: 0, limit: -1 });
export function incomingFields(r: RowIncoming): Required<RowIncoming> {
  return { incoming: r.incoming ?? 0, backordered: r.backordered ?? 0, nextEta: r.nextEta ?? 0, policy: r.policy ?? 0, limit: r.limit ?? -1 };
}

/** A decoded CDC event as a row change for the apply step. */
export function fromStockChange(c: {
  sku: string;
  locationId: string;
  row: ({ onHand: number; reserved: number; safetyStock: number } & RowIncoming) | null;
  version: number;
  commitTs: number;
  txId?: number | null;
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
    ...(c.row ? incomingFields(c.row) : NO_INCOMING),
    ...(c.txId != null ? { txId: c.txId } : {}),
  };
}
