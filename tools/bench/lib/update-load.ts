/** The Postgres side of the latency benchmarks: benchmark rows and a steady-rate single-row UPDATE load. */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

/** The update load's flags, as the latency benchmarks take them: --rate 1000 (per second), --seconds 20, --rows 1000, --connections 16. */
export function updateLoadArgs(args: { get(name: string, fallback: number): number }): { rate: number; seconds: number; rows: number; connections: number } {
  return { rate: args.get('rate', 1000), seconds: args.get('seconds', 20), rows: Math.round(args.get('rows', 1000)), connections: Math.round(args.get('connections', 16)) };
}

/** The i-th benchmark row's SKU (from 0): `<skuPrefix>00001`.., as seedBenchRows names them. */
export function benchSku(skuPrefix: string, i: number): string {
  return `${skuPrefix}${String(i + 1).padStart(5, '0')}`;
}

/** Inserts rows `<skuPrefix>00001`.. at each of `locations` (default 'WH-1'; on hand 1000) unless they exist. */
export async function seedBenchRows(pool: pg.Pool, skuPrefix: string, rows: number, locations: string[] = ['WH-1']): Promise<void> {
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand)
     SELECT $2 || lpad(n::text, 5, '0'), l, 1000 FROM generate_series(1, $1::int) n, unnest($3::text[]) l
     ON CONFLICT DO NOTHING`,
    [rows, skuPrefix, locations],
  );
}

/**
 * Runs `rate * seconds` single-row transactions `UPDATE ... SET on_hand = on_hand + 1 ... RETURNING
 * version` at a steady rate, round-robin over `skuOf(0..rows-1)` at `location` (default 'WH-1'); `onAck(sku, version, at)`
 * is called when each COMMIT returns. `onReport(sent, total)` runs every 2 s while sending. Failed
 * updates are counted, the first one kept. Returns once every update has settled.
 */
export async function steadyUpdates(
  pool: pg.Pool,
  opts: {
    rate: number;
    seconds: number;
    rows: number;
    skuOf: (i: number) => string;
    location?: string;
    onAck: (sku: string, version: string, at: number) => void;
    onReport?: (sent: number, total: number) => void | Promise<void>;
  },
): Promise<{ total: number; errors: number; firstError: unknown; elapsed: number }> {
  const { rate, rows, skuOf } = opts;
  const location = opts.location ?? 'WH-1';
  const total = Math.round(rate * opts.seconds);
  const started = Date.now();
  let sent = 0;
  let errors = 0;
  let firstError: unknown;
  const inflight = new Set<Promise<void>>();
  let lastReport = started;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
    while (sent < due) {
      const sku = skuOf(sent % rows);
      sent++;
      const p = pool
        .query<{ version: string }>(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1 AND location_id = $2 RETURNING version`, [sku, location])
        .then(
          (r) => opts.onAck(sku, r.rows[0]!.version, Date.now()),
          (err: unknown) => {
            if (errors++ === 0) firstError = err;
          },
        );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    if (Date.now() - lastReport >= 2000) {
      lastReport = Date.now();
      await opts.onReport?.(sent, total);
    }
    await sleep(2);
  }
  await Promise.all(inflight);
  return { total, errors, firstError, elapsed: (Date.now() - started) / 1000 };
}

/** Polls `done()` every `intervalMs` until it is true or `timeoutMs` have passed. */
export async function waitUntil(done: () => boolean, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !done()) await sleep(intervalMs);
}
