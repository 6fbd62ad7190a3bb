/**
 * The movement ledger's public face for other product folders (docs/ledger.md): reading
 * movements, for the gateway's `GET /v1/movements` and `npm run inspect -- explain`. How the
 * ledger is written (the trigger of migration 0016, the writers' context) and published
 * (connectors/ledger/relay.ts) stays elsewhere.
 */
import type pg from 'pg';
import { MOVEMENT_BUCKETS, movementFromRow, type Movement, type MovementBucket, type MovementRow } from '../lib/contracts/movements.ts';

export interface MovementQuery {
  sku?: string | undefined;
  locationId?: string | undefined;
  /** Epoch ms, inclusive: movements recorded at or after it. */
  since?: number | undefined;
  /** Epoch ms, exclusive: movements recorded before it. */
  until?: number | undefined;
  /** Paging: only movements with a larger id than this (the previous page's `next`). */
  after?: number | undefined;
  limit: number;
}

export const MAX_MOVEMENTS_PAGE = 1000;

/**
 * One page of movements in ledger order (movement id) and the cursor of the next page (null: no
 * more now). Ids are taken when a movement is written, so a transaction that commits late can
 * add a movement behind a cursor: read windows that end a few seconds in the past (`until`) to be
 * sure of every movement in them, or follow `stock.movements`, which is in commit order.
 */
export async function readMovements(pool: pg.Pool, q: MovementQuery): Promise<{ items: Movement[]; next: number | null }> {
  const limit = Math.min(Math.max(1, q.limit), MAX_MOVEMENTS_PAGE);
  const r = await pool.query<MovementRow>(
    `SELECT * FROM stock_movements
      WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR location_id = $2)
        AND ($3::bigint IS NULL OR recorded_at >= to_timestamp($3 / 1000.0))
        AND ($4::bigint IS NULL OR recorded_at < to_timestamp($4 / 1000.0))
        AND ($5::bigint IS NULL OR movement_id > $5)
      ORDER BY movement_id
      LIMIT $6`,
    [q.sku ?? null, q.locationId ?? null, q.since ?? null, q.until ?? null, q.after ?? null, limit + 1],
  );
  const items = r.rows.slice(0, limit).map(movementFromRow);
  return { items, next: r.rows.length > limit ? items[items.length - 1]!.movementId : null };
}

export type Figures = Record<MovementBucket, number>;

export interface RowExplanation {
  sku: string;
  locationId: string;
  /** What the ledger does not itemise: the figures when it started plus every pruned movement. */
  baseline: Figures & { throughAt: number | null };
  movements: Movement[];
  /** The row as it is now (null: no row). */
  current: (Figures & { version: number }) | null;
  /** Baseline plus movements minus current, per bucket: all zero when the ledger explains the row. */
  unexplained: Figures;
}

const zero = (): Figures => Object.fromEntries(MOVEMENT_BUCKETS.map((b) => [b, 0])) as Figures;

/** How a SKU's rows (one location, or every location it has or had) reached their figures. */
export async function explainSku(pool: pg.Pool, sku: string, locationId?: string): Promise<RowExplanation[]> {
  const loc = locationId ?? null;
  const [moves, base, cur] = await Promise.all([
    pool.query<MovementRow>(`SELECT * FROM stock_movements WHERE sku = $1 AND ($2::text IS NULL OR location_id = $2) ORDER BY location_id, version, movement_id`, [sku, loc]),
    pool.query<{ location_id: string; on_hand: string; reserved: string; safety_stock: string; incoming: string; backordered: string; through_at: Date }>(
      `SELECT * FROM stock_movement_baselines WHERE sku = $1 AND ($2::text IS NULL OR location_id = $2)`,
      [sku, loc],
    ),
    pool.query<{ location_id: string; row: Record<string, unknown> }>(
      `SELECT location_id, to_jsonb(s) AS row FROM stock_levels s WHERE sku = $1 AND ($2::text IS NULL OR location_id = $2)`,
      [sku, loc],
    ),
  ]);
  const locations = new Set<string>([...moves.rows.map((m) => m.location_id), ...base.rows.map((b) => b.location_id), ...cur.rows.map((c) => c.location_id)]);
  const out: RowExplanation[] = [];
  for (const l of [...locations].sort()) {
    const b = base.rows.find((x) => x.location_id === l);
    const baseline = b
      ? { onHand: Number(b.on_hand), reserved: Number(b.reserved), safetyStock: Number(b.safety_stock), incoming: Number(b.incoming), backordered: Number(b.backordered), throughAt: b.through_at.getTime() }
      : { ...zero(), throughAt: null };
    const movements = moves.rows.filter((m) => m.location_id === l).map(movementFromRow);
    const c = cur.rows.find((x) => x.location_id === l)?.row;
    const current = c
      ? {
          onHand: Number(c.on_hand ?? 0),
          reserved: Number(c.reserved ?? 0),
          safetyStock: Number(c.safety_stock ?? 0),
          incoming: Number(c.incoming ?? 0),
          backordered: Number(c.backordered ?? 0),
          version: Number(c.version),
        }
      : null;
    const unexplained = zero();
    for (const k of MOVEMENT_BUCKETS) {
      unexplained[k] = baseline[k] + movements.reduce((s, m) => s + m.delta[k], 0) - (current?.[k] ?? 0);
    }
    out.push({ sku, locationId: l, baseline, movements, current, unexplained });
  }
  return out;
}
