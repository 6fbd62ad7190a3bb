/**
 * The write-back function's allocation (`purchase_write_back`, migration 0008) against its pure
 * specification (purchase/domain/allocate.ts) on random stock and batches of holds. Each case
 * runs in a transaction that is rolled back, so nothing reaches CDC.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { allocate, type Allocation, type LocationStock } from '../purchase/domain/allocate.ts';
import { testConfig, unique } from './helpers.ts';

const pool = new pg.Pool({ connectionString: testConfig().pg.url, max: 2 });
afterAll(() => pool.end());

/** Small deterministic PRNG so a failure can be replayed from its seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

type Expected = { ok: true; allocations: Allocation[] } | { ok: false };

describe('purchase_write_back allocation', () => {
  it.each(Array.from({ length: 25 }, (_, i) => 1000 + i))('agrees with allocate() for seed %i', async (seed) => {
    const r = rng(seed);
    const sku = unique('ALLOC');
    const locs: LocationStock[] = Array.from({ length: 1 + r(4) }, (_, i) => {
      const onHand = r(12);
      return { locationId: `L${r(3)}${i}`, onHand, reserved: r(onHand + 1), safetyStock: r(3) };
    });
    const holds = Array.from({ length: 1 + r(5) }, () => ({ id: randomUUID(), qty: 1 + r(8) }));

    // The specification, applied hold after hold against a working copy.
    const work = locs.map((l) => ({ ...l }));
    const expected = new Map<string, Expected>();
    for (const h of holds) {
      const a = allocate(work, h.qty);
      if (!a) {
        expected.set(h.id, { ok: false });
        continue;
      }
      for (const x of a) work.find((l) => l.locationId === x.locationId)!.reserved += x.qty;
      expected.set(h.id, { ok: true, allocations: a });
    }

    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      for (const l of locs) {
        await c.query(`INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock) VALUES ($1, $2, $3, $4, $5)`, [sku, l.locationId, l.onHand, l.reserved, l.safetyStock]);
      }
      const input = holds.map((h) => ({ id: h.id, customer: 'alloc', idem: unique('k'), hash: 'h', expires: new Date(Date.now() + 60_000).toISOString(), items: [{ sku, qty: h.qty }] }));
      const res = await c.query<{ out: Array<{ id: string; ok: boolean; lines?: Array<{ allocations: Allocation[] }> }> }>('SELECT purchase_write_back($1::jsonb) AS out', [JSON.stringify(input)]);
      const got = new Map(res.rows[0]!.out.map((o) => [o.id, o.ok ? { ok: true, allocations: o.lines![0]!.allocations } : { ok: false }]));
      expect(Object.fromEntries(got), `seed ${seed}: ${JSON.stringify({ locs, holds })}`).toEqual(Object.fromEntries(expected));
      // And the rows now hold exactly what the specification reserved.
      const rows = await c.query<{ location_id: string; reserved: number }>(`SELECT location_id, reserved FROM stock_levels WHERE sku = $1`, [sku]);
      for (const row of rows.rows) expect(row.reserved).toBe(work.find((l) => l.locationId === row.location_id)!.reserved);
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  });
});
