/**
 * Reads of stock_levels for rebuild and reconciliation: keyset-paged by SKU so memory stays
 * bounded at any table size, optionally limited to SKUs starting with a prefix.
 */
import type pg from 'pg';
import { POLICY_CODE, type PolicyName } from '../../lib/contracts/backorder.ts';
import type { RowState, SkuRows } from '../domain/fold.ts';

interface Row {
  sku: string;
  location_id: string;
  on_hand: number;
  reserved: number;
  safety_stock: number;
  version: string;
  updated_ms: string;
  incoming: number;
  backordered: number;
  next_eta_ms: string | null;
  backorder_policy: string;
  backorder_limit: number | null;
}

function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function toState(r: Row): RowState {
  return {
    onHand: r.on_hand,
    reserved: r.reserved,
    safetyStock: r.safety_stock,
    version: Number(r.version),
    deleted: false,
    commitTs: Number(r.updated_ms),
    incoming: r.incoming,
    backordered: r.backordered,
    nextEta: r.next_eta_ms === null ? 0 : Number(r.next_eta_ms),
    policy: POLICY_CODE[r.backorder_policy as PolicyName] ?? 0,
    limit: r.backorder_limit ?? -1,
  };
}

export async function countRows(pool: pg.Pool, skuPrefix = ''): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM stock_levels WHERE sku LIKE $1`, [likePrefix(skuPrefix)]);
  return Number(rows[0]!.n);
}

/** Yields pages of whole SKUs (every location of a SKU in the same page). */
export async function* pagesBySku(pool: pg.Pool, { skuPrefix = '', skusPerPage = 2000 } = {}): AsyncGenerator<Map<string, SkuRows>> {
  let after = '';
  for (;;) {
    const skus = await pool.query<{ sku: string }>(
      `SELECT DISTINCT sku FROM stock_levels WHERE sku > $1 AND sku LIKE $2 ORDER BY sku LIMIT $3`,
      [after, likePrefix(skuPrefix), skusPerPage],
    );
    if (skus.rows.length === 0) return;
    const list = skus.rows.map((r) => r.sku);
    yield await rowsFor(pool, list);
    after = list[list.length - 1]!;
    if (list.length < skusPerPage) return;
  }
}

export async function rowsFor(pool: pg.Pool, skus: string[]): Promise<Map<string, SkuRows>> {
  const res = await pool.query<Row>(
    `SELECT sku, location_id, on_hand, reserved, safety_stock, version,
            (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms,
            incoming, backordered, (extract(epoch FROM next_eta) * 1000)::bigint AS next_eta_ms, backorder_policy, backorder_limit
       FROM stock_levels WHERE sku = ANY($1::text[])`,
    [skus],
  );
  const out = new Map<string, SkuRows>(skus.map((s) => [s, {}]));
  for (const r of res.rows) out.get(r.sku)![r.location_id] = toState(r);
  return out;
}
