/**
 * Deciding a batch of valid adjustments against the state read (and locked) in Postgres: which
 * apply, which are duplicates of adjustments applied earlier, which are refused and why, and the
 * rows' final on-hand figures. Adjustments are decided one after another in the given order
 * (Kafka order within a partition), each against the state the previous ones left, so a batch
 * decides exactly what the same adjustments applied one by one would. Pure: no I/O.
 *
 * Rules (docs/connectors.md):
 *   - an id already applied with the same payload hash is a duplicate (nothing changes, the first
 *     outcome is reported again); with another hash, `adjustment_id_conflict`;
 *   - the SKU must be in `products`, every location in `locations` (`unknown_sku`,
 *     `unknown_location`); a `stock_levels` row that does not exist yet counts as 0 on hand and
 *     0 reserved, and an adjustment that applies to it (a receipt, a return, a count, the target
 *     of a transfer) creates it;
 *   - on hand never goes below 0 (`negative_on_hand`) and a change that lowers on hand never
 *     leaves it below the units reserved for buyers (`below_reserved`); on hand stays within a
 *     Postgres int (`on_hand_overflow`). A refused adjustment changes nothing, at any location;
 *   - compare-and-set: an adjustment carrying `expectedOnHand` and/or `expectedVersion` applies
 *     only if its location (the source of a TRANSFER) is at that on hand / that version when its
 *     turn comes, else `stock_changed`, checked before the quantity rules (the sender's premise
 *     is wrong, whatever else is). On hand is the figure the earlier adjustments of the batch
 *     left (as one by one); a missing row is on hand 0 and has no version, so any
 *     `expectedVersion` on it is refused. Versions come from one Postgres sequence and are
 *     assigned at write time: a row that an earlier adjustment of the same batch changed has no
 *     version anyone can have read, so an `expectedVersion` on it is refused too — what the same
 *     adjustments applied one by one would decide, since the earlier one would have bumped it.
 */
import type { StockAdjustment } from '../../../schemas/generated/avro-types.ts';
import { KIND_EFFECT, MAX_UNITS } from './adjustment.ts';

export interface RowState {
  onHand: number;
  reserved: number;
  /** `stock_levels.version` as read under lock; absent: not known (no `expectedVersion` matches). */
  version?: number;
}

export type RefusalCode =
  | 'adjustment_id_conflict'
  | 'unknown_sku'
  | 'unknown_location'
  | 'stock_changed'
  | 'negative_on_hand'
  | 'below_reserved'
  | 'on_hand_overflow'
  | 'count_too_old'
  | 'count_superseded'
  | 'count_in_future';

/** What an applied adjustment did, per location it touched (a TRANSFER: source, then target). */
export interface LocationChange {
  locationId: string;
  onHandBefore: number;
  onHandAfter: number;
}

export interface LedgerEntry {
  hash: string;
  /** The outcome recorded when the adjustment was applied (reported again for duplicates). */
  result: unknown;
}

export interface DecideInput {
  adjustment: StockAdjustment;
  hash: string;
}

export type Decision =
  | { outcome: 'applied'; adjustment: StockAdjustment; hash: string; changes: LocationChange[] }
  /** `first`: the ledger's stored result, or, when the first one is in this batch, its index. */
  | { outcome: 'duplicate'; adjustment: StockAdjustment; first: { result: unknown } | { index: number } }
  | { outcome: 'refused'; adjustment: StockAdjustment; code: RefusalCode; message: string; details: Record<string, unknown> };

export interface RowWrite {
  sku: string;
  locationId: string;
  /** The figure read under lock (null: no row yet, it is inserted). */
  onHandBefore: number | null;
  onHandAfter: number;
}

export interface DecideState {
  /** Rows as read under lock, by rowKey; a touched row that is absent does not exist yet. */
  rows: ReadonlyMap<string, RowState>;
  /** Applied adjustments among the batch's ids. */
  ledger: ReadonlyMap<string, LedgerEntry>;
  products: ReadonlySet<string>;
  locations: ReadonlySet<string>;
  /** What dated counts need from the movement ledger (absent: the batch has none). */
  dated?: DatedCountState;
}

/**
 * Dated counts (docs/ledger.md#dated-counts): read from the ledger under the rows' locks.
 * `rows` by `datedKey(sku, location, countedAt)`.
 */
export interface DatedCountState {
  /** Epoch ms, the transaction's clock. */
  now: number;
  /** Epoch ms: movements that took effect before it are not itemised (null: no limit). */
  horizon: number | null;
  rows: ReadonlyMap<string, { movedSince: number; newerCountAt: number | null }>;
}

/** Dated counts may be this far in the future (clock skew between the counting system and Postgres). */
export const COUNT_SKEW_MS = 60_000;

export function datedKey(sku: string, locationId: string, countedAt: number): string {
  return `${rowKey(sku, locationId)}\u0000${countedAt}`;
}

export function rowKey(sku: string, locationId: string): string {
  return `${sku}\u0000${locationId}`;
}

/** Every (sku, location) the batch may touch, sorted: the order rows are locked in. */
export function rowsToLock(items: readonly DecideInput[]): Array<{ sku: string; locationId: string }> {
  const keys = new Map<string, { sku: string; locationId: string }>();
  for (const { adjustment: a } of items) {
    keys.set(rowKey(a.sku, a.locationId), { sku: a.sku, locationId: a.locationId });
    if (a.kind === 'TRANSFER' && a.toLocationId !== null) keys.set(rowKey(a.sku, a.toLocationId), { sku: a.sku, locationId: a.toLocationId });
  }
  return [...keys.values()].sort((x, y) => (x.sku < y.sku ? -1 : x.sku > y.sku ? 1 : x.locationId < y.locationId ? -1 : x.locationId > y.locationId ? 1 : 0));
}

function refuse(adjustment: StockAdjustment, code: RefusalCode, message: string, details: Record<string, unknown>): Decision {
  return { outcome: 'refused', adjustment, code, message, details };
}

/** The new on-hand figure of one location, or why it cannot be. */
function check(a: StockAdjustment, locationId: string, row: RowState, after: number): Decision | null {
  const details = { sku: a.sku, locationId, onHand: row.onHand, reserved: row.reserved, requested: a.quantity };
  if (after < 0) {
    return refuse(a, 'negative_on_hand', `${a.kind} of ${a.quantity} at ${locationId} would leave on hand at ${after} (on hand ${row.onHand})`, details);
  }
  if (after < row.onHand && after < row.reserved) {
    return refuse(
      a,
      'below_reserved',
      `${a.kind} ${a.kind === 'COUNT' ? `to ${a.quantity}` : `of ${a.quantity}`} at ${locationId} would leave on hand at ${after}, below the ${row.reserved} units reserved for buyers`,
      details,
    );
  }
  if (after > MAX_UNITS) return refuse(a, 'on_hand_overflow', `${a.kind} of ${a.quantity} at ${locationId} would take on hand above ${MAX_UNITS}`, details);
  return null;
}

/**
 * The compare-and-set check of `a` against its location's row as the decision finds it: null when
 * it has no expectation or they hold, else the `stock_changed` refusal with the current figures.
 * `version` null: the row does not exist yet; `changedInBatch`: an earlier adjustment of the batch
 * changed it, so its read version is gone and the new one is not known before the write.
 */
export function checkExpectation(a: StockAdjustment, row: RowState, version: number | null, changedInBatch = false): Decision | null {
  if (a.expectedOnHand === null && a.expectedVersion === null) return null;
  const current = changedInBatch ? null : version;
  const mismatched: string[] = [];
  const why: string[] = [];
  if (a.expectedOnHand !== null && a.expectedOnHand !== row.onHand) {
    mismatched.push('expectedOnHand');
    why.push(`expected on hand ${a.expectedOnHand}, is ${row.onHand}`);
  }
  if (a.expectedVersion !== null && a.expectedVersion !== current) {
    mismatched.push('expectedVersion');
    why.push(
      `expected version ${a.expectedVersion}, ${changedInBatch ? 'an earlier adjustment of the same batch changed the row' : version === null ? 'the row has no version yet' : `is ${version}`}`,
    );
  }
  if (mismatched.length === 0) return null;
  return refuse(a, 'stock_changed', `stock of ${a.sku} at ${a.locationId} changed: ${why.join('; ')}`, {
    sku: a.sku,
    locationId: a.locationId,
    onHand: row.onHand,
    reserved: row.reserved,
    version: current,
    expectedOnHand: a.expectedOnHand,
    expectedVersion: a.expectedVersion,
    mismatched,
  });
}

interface BatchMove {
  /** Epoch ms it takes effect; +Infinity: now (after any count). */
  at: number;
  delta: number;
  /** A dated count's time, else null. */
  countedAt: number | null;
}

/**
 * The on-hand figure a dated count means now, or why it cannot be applied: too old for the
 * ledger, counted before a count already applied, or in the future. `moves`: the row's changes
 * earlier in this batch (not in the ledger yet).
 */
export function decideDatedCount(
  a: StockAdjustment,
  countedAt: number,
  dated: DatedCountState | undefined,
  moves: readonly BatchMove[],
): { onHand: number } | { refusal: Decision } {
  const details = { sku: a.sku, locationId: a.locationId, countedAt, counted: a.quantity };
  if (!dated) throw new Error('decideBatch: a dated count needs state.dated (read from the ledger)');
  if (countedAt > dated.now + COUNT_SKEW_MS) {
    return { refusal: refuse(a, 'count_in_future', `count of ${a.sku} at ${a.locationId} is dated ${new Date(countedAt).toISOString()}, after now`, { ...details, now: dated.now }) };
  }
  if (dated.horizon !== null && countedAt < dated.horizon) {
    return {
      refusal: refuse(
        a,
        'count_too_old',
        `count of ${a.sku} at ${a.locationId} is dated ${new Date(countedAt).toISOString()}, before the ledger's horizon ${new Date(dated.horizon).toISOString()}: the movements since are not all itemised`,
        { ...details, horizon: dated.horizon },
      ),
    };
  }
  const read = dated.rows.get(datedKey(a.sku, a.locationId, countedAt)) ?? { movedSince: 0, newerCountAt: null };
  const newerInBatch = moves.filter((m) => m.countedAt !== null && m.countedAt > countedAt).map((m) => m.countedAt!);
  const newer = Math.max(read.newerCountAt ?? -1, ...newerInBatch);
  if (newer >= 0) {
    return {
      refusal: refuse(a, 'count_superseded', `count of ${a.sku} at ${a.locationId} dated ${new Date(countedAt).toISOString()} is older than a count already applied (${new Date(newer).toISOString()})`, {
        ...details,
        newerCountAt: newer,
      }),
    };
  }
  const inBatch = moves.filter((m) => m.at > countedAt).reduce((sum, m) => sum + m.delta, 0);
  return { onHand: a.quantity + read.movedSince + inBatch };
}

/** Decides `items` in order against `state`; returns one decision per item and the rows to write. */
export function decideBatch(items: readonly DecideInput[], state: DecideState): { decisions: Decision[]; writes: RowWrite[] } {
  const rows = new Map<string, RowState>();
  const read = (sku: string, locationId: string): RowState => rows.get(rowKey(sku, locationId)) ?? state.rows.get(rowKey(sku, locationId)) ?? { onHand: 0, reserved: 0 };
  const seen = new Map<string, { hash: string; index: number }>();
  /** Rows whose on hand an applied adjustment of this batch changed: their read version is gone. */
  const changed = new Set<string>();
  /** On-hand changes applied earlier in this batch, per row: when they take effect (now: +Infinity). */
  const batchMoves = new Map<string, BatchMove[]>();
  const decisions: Decision[] = [];

  for (const [index, { adjustment: a, hash }] of items.entries()) {
    const earlier = seen.get(a.adjustmentId);
    const stored = state.ledger.get(a.adjustmentId);
    const firstHash = earlier?.hash ?? stored?.hash;
    if (firstHash !== undefined) {
      if (firstHash !== hash) {
        decisions.push(
          refuse(a, 'adjustment_id_conflict', `adjustment ${a.adjustmentId} was already applied with a different payload`, { adjustmentId: a.adjustmentId }),
        );
      } else {
        decisions.push({ outcome: 'duplicate', adjustment: a, first: earlier ? { index: earlier.index } : { result: stored!.result } });
      }
      continue;
    }
    if (!state.products.has(a.sku)) {
      decisions.push(refuse(a, 'unknown_sku', `SKU ${a.sku} is not in the catalog`, { sku: a.sku, field: 'sku' }));
      continue;
    }
    const unknownField = !state.locations.has(a.locationId) ? 'locationId' : a.toLocationId !== null && !state.locations.has(a.toLocationId) ? 'toLocationId' : null;
    if (unknownField) {
      const locationId = unknownField === 'locationId' ? a.locationId : a.toLocationId!;
      decisions.push(refuse(a, 'unknown_location', `location ${locationId} is not in the catalog`, { locationId, field: unknownField }));
      continue;
    }

    const sourceKey = rowKey(a.sku, a.locationId);
    const stale = checkExpectation(a, read(a.sku, a.locationId), state.rows.get(sourceKey)?.version ?? null, changed.has(sourceKey));
    if (stale) {
      decisions.push(stale);
      continue;
    }

    let countTo = a.quantity;
    if (a.kind === 'COUNT' && a.countedAt !== null) {
      const dated = decideDatedCount(a, a.countedAt, state.dated, batchMoves.get(sourceKey) ?? []);
      if ('refusal' in dated) {
        decisions.push(dated.refusal);
        continue;
      }
      countTo = dated.onHand;
    }

    const effect = KIND_EFFECT[a.kind];
    const targets: Array<{ locationId: string; after: (onHand: number) => number }> =
      effect === 'move'
        ? [
            { locationId: a.locationId, after: (n) => n - a.quantity },
            { locationId: a.toLocationId!, after: (n) => n + a.quantity },
          ]
        : [{ locationId: a.locationId, after: effect === '+' ? (n) => n + a.quantity : effect === '-' ? (n) => n - a.quantity : () => countTo }];

    let refusal: Decision | null = null;
    const changes: LocationChange[] = [];
    for (const t of targets) {
      const row = read(a.sku, t.locationId);
      const after = t.after(row.onHand);
      refusal = check(a, t.locationId, row, after);
      if (refusal) break;
      changes.push({ locationId: t.locationId, onHandBefore: row.onHand, onHandAfter: after });
    }
    if (refusal) {
      decisions.push(refusal);
      continue;
    }
    for (const c of changes) {
      const key = rowKey(a.sku, c.locationId);
      const moves = batchMoves.get(key) ?? [];
      moves.push({ at: a.kind === 'COUNT' && a.countedAt !== null ? a.countedAt : Number.POSITIVE_INFINITY, delta: c.onHandAfter - c.onHandBefore, countedAt: a.kind === 'COUNT' ? a.countedAt : null });
      batchMoves.set(key, moves);
      rows.set(rowKey(a.sku, c.locationId), { onHand: c.onHandAfter, reserved: read(a.sku, c.locationId).reserved });
      if (c.onHandAfter !== c.onHandBefore) changed.add(rowKey(a.sku, c.locationId));
    }
    seen.set(a.adjustmentId, { hash, index });
    decisions.push({ outcome: 'applied', adjustment: a, hash, changes });
  }

  const writes: RowWrite[] = [];
  for (const [key, row] of rows) {
    const [sku, locationId] = key.split('\u0000') as [string, string];
    const before = state.rows.get(key);
    if (before && before.onHand === row.onHand) continue; // e.g. a COUNT that confirmed the figure: nothing to write
    writes.push({ sku, locationId, onHandBefore: before ? before.onHand : null, onHandAfter: row.onHand });
  }
  return { decisions, writes };
}
