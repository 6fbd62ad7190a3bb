/** Stocking benchmark SKUs in Postgres and waiting until a gateway serves them from its views. */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { progress } from './run.ts';

/**
 * Inserts each `[sku, units]` into `stock_levels` (split over `locations` rows WH-1..n), then
 * touches the rows until the gateway at `gatewayUrl` reports every SKU with `units` available: a
 * processor that joined its group from the end of the CDC topic may miss the first change.
 */
export async function stockAndAwaitView(
  pool: pg.Pool,
  gatewayUrl: string,
  stocked: ReadonlyArray<readonly [string, number]>,
  opts: { locations?: number; timeoutMs?: number; alive?: () => boolean } = {},
): Promise<void> {
  const locations = opts.locations ?? 1;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  for (const [s, units] of stocked) {
    const perLoc = Array.from({ length: locations }, (_, i) => Math.floor(units / locations) + (i < units % locations ? 1 : 0));
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1, l, q FROM unnest($2::text[], $3::int[]) AS u(l, q)`, [s, perLoc.map((_, i) => `WH-${i + 1}`), perLoc]);
  }
  const viewBy = Date.now() + timeoutMs;
  for (const [s, units] of stocked) {
    for (;;) {
      if (opts.alive && !opts.alive()) throw new Error('the processor exited');
      const res = await fetch(`${gatewayUrl}/v1/stock/${s}`).catch(() => undefined);
      const body = res?.status === 200 ? ((await res.json()) as { available?: number }) : undefined;
      if (body?.available === units) break;
      if (Date.now() > viewBy) throw new Error(`the gateway did not report ${s} with ${units} available within ${timeoutMs / 1000} s (last: ${JSON.stringify(body ?? res?.status ?? 'no answer')})`);
      await pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE sku = ANY($1::text[])`, [stocked.map(([x]) => x)]);
      await sleep(300);
    }
  }
}

/** Deletes a benchmark SKU: its orders (lines, reservations, outbox rows) and its stock rows. */
export async function removeSku(pool: pg.Pool, sku: string): Promise<void> {
  await pool
    .query(
      `WITH mine AS (SELECT DISTINCT order_id FROM order_lines WHERE sku = $1),
            gone_outbox AS (DELETE FROM outbox WHERE aggregatetype = 'orders' AND aggregateid IN (SELECT order_id::text FROM mine))
       DELETE FROM orders WHERE id IN (SELECT order_id FROM mine)`,
      [sku],
    )
    .catch((err: Error) => progress(`  cleanup: could not delete the orders of ${sku}: ${err.message}`));
  await pool.query(`DELETE FROM stock_levels WHERE sku = $1`, [sku]).catch((err: Error) => progress(`  cleanup: could not delete ${sku}: ${err.message}`));
  await pool.query(`DELETE FROM stock_sku_locks WHERE sku = $1`, [sku]).catch(() => undefined);
}
