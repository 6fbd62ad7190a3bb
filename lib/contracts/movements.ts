/**
 * The movement ledger's shapes (docs/ledger.md): what a writer of stock_levels tells the ledger
 * about why it writes (the transaction-local `invsync.movement` setting read by the triggers of
 * migrations 0016 and 0019), and a movement as the API, the CLI and `stock.movements` show it.
 * Pure: no I/O.
 */

/** Why rows moved, as a writer states it; every field optional (the trigger fills the gaps). */
export interface MovementReason {
  /** adjustment | reserve | resize | confirm | cancel | expire | receive | ... (none given: `sql`). */
  kind?: string;
  /** A finer reason: an adjustment's kind (RECEIPT, COUNT, ...). */
  reason?: string | null;
  /** The system that sent it (an adjustment's sourceSystem). */
  source?: string | null;
  /** The document behind it: an adjustment's reference, `order:<id>`, an ASN. */
  reference?: string | null;
  /** Who caused it: `http:<credential>`, `kafka:<topic>/<partition>@<offset>`, `customer:<id>`. */
  actor?: string | null;
  details?: Record<string, unknown>;
  /** A dated count: when it was counted (ms); the movement takes effect then. */
  countedAt?: number;
}

export interface MovementContext extends MovementReason {
  /** Per SKU: fields that override the transaction's. */
  skus?: Record<string, MovementReason>;
  /** Per row (`rowContextKey`): fields that override the SKU's and the transaction's. */
  rows?: Record<string, MovementReason>;
}

/** The name of the transaction-local setting the ledger trigger reads. */
export const MOVEMENT_SETTING = 'invsync.movement';

/** The key of a row in `MovementContext.rows` (a tab cannot be in a SKU or location id). */
export function rowContextKey(sku: string, locationId: string): string {
  return `${sku}\t${locationId}`;
}

/**
 * SQL that sets the context for the rest of the transaction, as a FROM item:
 * `... FROM <movementContextFrom(n)>` with the JSON as parameter $n. The ledger's AFTER triggers
 * run at the end of their statement, so a statement that joins this sets the context before its
 * own movements are recorded (one round trip, also outside an explicit transaction).
 */
export function movementContextFrom(param: number): string {
  return `(SELECT set_config('${MOVEMENT_SETTING}', $${param}::text, true)) AS movement_ctx`;
}

export function encodeMovementContext(ctx: MovementContext): string {
  return JSON.stringify(ctx);
}

/** The buckets a movement moves. */
export const MOVEMENT_BUCKETS = ['onHand', 'reserved', 'safetyStock', 'incoming', 'backordered'] as const;
export type MovementBucket = (typeof MOVEMENT_BUCKETS)[number];

/** A movement as `GET /v1/movements`, the explain CLI and `stock.movements` show it. */
export interface Movement {
  movementId: number;
  sku: string;
  locationId: string;
  kind: string;
  reason: string | null;
  sourceSystem: string | null;
  reference: string | null;
  actor: string | null;
  details: Record<string, unknown> | null;
  /** What moved, per bucket. */
  delta: Record<MovementBucket, number>;
  /** The row's figures after the movement. */
  after: Record<MovementBucket, number>;
  version: number;
  deleted: boolean;
  /** Epoch ms: when it was written (in its transaction). */
  recordedAt: number;
  /** Epoch ms: when it took effect (a dated count: when it was counted). */
  effectiveAt: number;
}

/** A `stock_movements` row as Postgres returns it (pg gives bigint as string, timestamptz as Date). */
export interface MovementRow {
  movement_id: string | number;
  sku: string;
  location_id: string;
  kind: string;
  reason: string | null;
  source_system: string | null;
  reference: string | null;
  actor: string | null;
  details: Record<string, unknown> | null;
  on_hand_delta: number;
  reserved_delta: number;
  safety_stock_delta: number;
  incoming_delta: number;
  backordered_delta: number;
  on_hand: number;
  reserved: number;
  safety_stock: number;
  incoming: number;
  backordered: number;
  version: string | number;
  deleted: boolean;
  recorded_at: Date | string | number;
  effective_at: Date | string | number;
}

function epochMs(v: Date | string | number): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  return Date.parse(v);
}

export function movementFromRow(r: MovementRow): Movement {
  return {
    movementId: Number(r.movement_id),
    sku: r.sku,
    locationId: r.location_id,
    kind: r.kind,
    reason: r.reason,
    sourceSystem: r.source_system,
    reference: r.reference,
    actor: r.actor,
    details: r.details,
    delta: { onHand: r.on_hand_delta, reserved: r.reserved_delta, safetyStock: r.safety_stock_delta, incoming: r.incoming_delta, backordered: r.backordered_delta },
    after: { onHand: r.on_hand, reserved: r.reserved, safetyStock: r.safety_stock, incoming: r.incoming, backordered: r.backordered },
    version: Number(r.version),
    deleted: r.deleted,
    recordedAt: epochMs(r.recorded_at),
    effectiveAt: epochMs(r.effective_at),
  };
}

/**
 * Replays movements over a starting figure: what the ledger says the row holds after them. The
 * explain CLI and the tests use it to show (and check) that the ledger explains the figures.
 */
export function replay(start: Record<MovementBucket, number>, movements: readonly Pick<Movement, 'delta'>[]): Record<MovementBucket, number> {
  const out = { ...start };
  for (const m of movements) for (const b of MOVEMENT_BUCKETS) out[b] += m.delta[b];
  return out;
}

/**
 * The on-hand figure a count taken at `countedAt` means now (docs/ledger.md#dated-counts): the
 * counted units plus every on-hand movement that took effect after the count.
 */
export function countAsOfNow(counted: number, onHandMovedSince: number): number {
  return counted + onHandMovedSince;
}
