/**
 * The write-back function's allocation (`purchase_write_back`, migration 0008) against its pure
 * specification (purchase/domain/allocate.ts) on random stock and batches of holds; a batch
 * whose holds meet existing orders or each other (each refused hold gives its units back before
 * the next is allocated); a full 200-hold batch. Each case runs in a transaction that is rolled
 * back, so nothing reaches CDC.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { allocate, type Allocation, type LocationStock } from '../purchase/domain/allocate.ts';
import { testConfig, unique } from './helpers.ts';

const pool = new pg.Pool({ connectionString: testConfig().pg.url, max: 2 });
afterAll(() => pool.end());

/** Runs `fn` in a transaction that is rolled back: nothing it writes stays or reaches CDC. */
async function inRolledBack(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

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

    await inRolledBack(async (c) => {
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
    });
  });
});

describe('purchase_write_back with conflicting holds, and a full batch', () => {
  type Out = { id: string; ok: boolean; reason?: string; existing?: { orderId: string }; lines?: Array<{ allocations: Allocation[] }> };

  it('decides a batch with conflicts hold by hold: a conflicting hold gives its units back before the next one', async () => {
    const sku = unique('CONFL');
    await inRolledBack(async (c) => {
      await c.query(`INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock) VALUES ($1, 'L1', 10, 0, 0)`, [sku]);
      const customer = unique('cust');
      const expires = new Date(Date.now() + 60_000).toISOString();
      const existingKey = randomUUID();
      const existingId = randomUUID();
      await c.query(`INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, expires_at) VALUES ($1, $2, 'reserved', 'taken-key', 'h0', now() + interval '1 hour'), ($3, $2, 'reserved', 'other-key', 'h1', now() + interval '1 hour')`, [existingKey, customer, existingId]);
      const hold = (id: string, idem: string, qty: number) => ({ id, customer, idem, hash: 'h', expires, items: [{ sku, qty }] });
      const [fresh1, dupKey, fresh2, fresh3, fresh4] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      const input = [hold(fresh1, 'k1', 3), hold(dupKey, 'taken-key', 4), hold(existingId, 'k-same-id', 3), hold(fresh2, 'k2', 4), hold(fresh3, 'k3', 1), hold(fresh4, 'k3', 1)];
      const res = await c.query<{ out: Out[] }>('SELECT purchase_write_back($1::jsonb) AS out', [JSON.stringify(input)]);
      const by = new Map(res.rows[0]!.out.map((o) => [o.id, o]));
      expect(by.get(fresh1)).toMatchObject({ ok: true, lines: [{ allocations: [{ locationId: 'L1', qty: 3 }] }] });
      expect(by.get(dupKey)).toMatchObject({ ok: false, reason: 'duplicate_key', existing: { orderId: existingKey } });
      expect(by.get(existingId)).toMatchObject({ ok: false, reason: 'exists' });
      // 3 + 4 + 3 would leave it short: it gets the units the two refused holds gave back.
      expect(by.get(fresh2)).toMatchObject({ ok: true, lines: [{ allocations: [{ locationId: 'L1', qty: 4 }] }] });
      expect(by.get(fresh3)).toMatchObject({ ok: true });
      expect(by.get(fresh4)).toMatchObject({ ok: false, reason: 'duplicate_key', existing: { orderId: fresh3 } });
      const reserved = await c.query<{ reserved: number }>(`SELECT reserved FROM stock_levels WHERE sku = $1`, [sku]);
      expect(reserved.rows[0]!.reserved).toBe(8);
      const orders = await c.query<{ id: string }>(`SELECT id FROM orders WHERE customer_id = $1 ORDER BY id`, [customer]);
      expect(orders.rows.map((r) => r.id).sort()).toEqual([existingKey, existingId, fresh1, fresh2, fresh3].sort());
      const placed = await c.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE aggregateid = ANY($1::text[]) AND type = 'OrderPlaced'`, [[fresh1, fresh2, fresh3]]);
      expect(Number(placed.rows[0]!.n)).toBe(3);
    });
  });

  it('writes a 200-hold batch of one SKU: every order, line and OrderPlaced, reserved raised once per unit', async () => {
    const sku = unique('BATCH');
    await inRolledBack(async (c) => {
      await c.query(`INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock) VALUES ($1, 'L1', 500, 0, 0)`, [sku]);
      const expires = new Date(Date.now() + 60_000).toISOString();
      const input = Array.from({ length: 200 }, (_, i) => ({ id: randomUUID(), customer: unique('c'), idem: `k${i}`, hash: 'h', expires, items: [{ sku, qty: 1 + (i % 3) }] }));
      const direct = await c.query<{ out: Out[] }>('SELECT purchase_write_back($1::jsonb) AS out', [JSON.stringify(input)]);
      expect(direct.rows[0]!.out.filter((o) => o.ok)).toHaveLength(200);
      const ids = input.map((h) => h.id);
      const counts = await c.query<{ orders: string; lines: string; placed: string; reserved: number }>(
        `SELECT (SELECT count(*) FROM orders WHERE id = ANY($1::uuid[])) AS orders,
                (SELECT count(*) FROM order_lines WHERE order_id = ANY($1::uuid[])) AS lines,
                (SELECT count(*) FROM outbox WHERE aggregateid = ANY($1::text[]) AND type = 'OrderPlaced') AS placed,
                (SELECT reserved FROM stock_levels WHERE sku = $2) AS reserved`,
        [ids, sku],
      );
      expect(counts.rows[0]).toEqual({ orders: '200', lines: '200', placed: '200', reserved: input.reduce((n, h) => n + h.items[0]!.qty, 0) });
    });
  });
});
