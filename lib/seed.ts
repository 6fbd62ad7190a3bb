/**
 * The demo catalog: `skus` products (SKU-000001 ...) stocked at `locations` locations
 * (WH-1, WH-2, ...). Idempotent: existing rows are left as they are, so re-seeding never resets
 * stock someone changed. Quantities are deterministic per SKU so runs are comparable.
 */
import type pg from 'pg';
import { inTransaction } from './pg.ts';

export function skuId(n: number): string {
  return `SKU-${String(n).padStart(6, '0')}`;
}

export function locationId(n: number): string {
  return `WH-${n}`;
}

export async function seedCatalog(pool: pg.Pool, { skus, locations }: { skus: number; locations: number }): Promise<{ inserted: number }> {
  return inTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO locations (location_id, name)
       SELECT 'WH-' || n, 'Warehouse ' || n FROM generate_series(1, $1::int) AS n
       ON CONFLICT DO NOTHING`,
      [locations],
    );
    await client.query(
      `INSERT INTO products (sku, name)
       SELECT 'SKU-' || lpad(n::text, 6, '0'), 'Demo product ' || n FROM generate_series(1, $1::int) AS n
       ON CONFLICT DO NOTHING`,
      [skus],
    );
    const res = await client.query(
      `INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock)
       SELECT 'SKU-' || lpad(s::text, 6, '0'), 'WH-' || l, ((s * 7 + l * 13) % 50) + 5, 0, CASE WHEN s % 10 = 0 THEN 2 ELSE 0 END
       FROM generate_series(1, $1::int) AS s, generate_series(1, $2::int) AS l
       ON CONFLICT DO NOTHING`,
      [skus, locations],
    );
    return { inserted: res.rowCount ?? 0 };
  });
}
