/**
 * `npm run simulate -- flash-sale`: (re)stocks a hot SKU in Postgres with plain SQL (available =
 * --units at WH-1, nothing at its other locations), waits until the gateway reports it, then
 * --shoppers concurrent shoppers try to buy qty 1 each, at --rate attempts/s in all, with a fresh
 * Idempotency-Key per attempt, until the gateway answers sold out; the summary is checked against
 * Postgres (reserved rose by exactly the number accepted). The shoppers share one keep-alive HTTP
 * agent; 429 answers are honoured.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfigOrExit } from '../../../lib/config.ts';
import { createPgPool, inTransaction } from '../../../lib/pg.ts';
import { bad, shopperAuth } from './common.ts';

export interface FlashSaleOptions {
  sku: string;
  units: number;
  shoppers: number;
  rate: number;
  gateway: string;
}

export function parseFlashSale(argv: string[]): FlashSaleOptions {
  const o: FlashSaleOptions = { sku: 'FLASH-DEMO', units: 200, shoppers: 500, rate: 50, gateway: 'http://127.0.0.1:18080' };
  const int = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) bad(`--${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!flag.startsWith('--')) bad(`unexpected argument ${JSON.stringify(flag)}`);
    if (value === undefined || value.startsWith('--')) bad(`${flag} needs a value`);
    switch (flag) {
      case '--sku':
        if (!/^[\x21-\x7e]{1,128}$/.test(value) || value.includes('/') || value.includes(',')) bad(`--sku must be 1 to 128 printable characters without spaces, "/" or "," (got ${JSON.stringify(value)})`);
        o.sku = value;
        break;
      case '--units':
        o.units = int('units', value, 1, 1_000_000);
        break;
      case '--shoppers':
        o.shoppers = int('shoppers', value, 1, 10_000);
        break;
      case '--rate': {
        const n = Number(value);
        if (!Number.isFinite(n) || n <= 0 || n > 100_000) bad(`--rate must be a number of attempts per second above 0, at most 100000 (got ${JSON.stringify(value)})`);
        o.rate = n;
        break;
      }
      case '--gateway': {
        let u: URL;
        try {
          u = new URL(value);
        } catch {
          bad(`--gateway must be a URL such as http://127.0.0.1:18080 (got ${JSON.stringify(value)})`);
        }
        if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`--gateway must be an http:// URL (got ${JSON.stringify(value)})`);
        if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) bad(`--gateway must be on this machine (loopback), got ${u.hostname}`);
        o.gateway = u.origin;
        break;
      }
      default:
        bad(`unknown option ${flag}`);
    }
  }
  return o;
}

/**
 * Paces all shoppers together at `rate` attempts/s: each call waits for the next free slot.
 * Resolves false (at once) when `signal` aborts, so that queued shoppers stop without waiting.
 */
function pacer(rate: number, signal: AbortSignal): () => Promise<boolean> {
  let next = performance.now();
  const interval = 1000 / rate;
  return async () => {
    if (signal.aborted) return false;
    const now = performance.now();
    next = Math.max(next, now - interval); // no credit for idle time beyond one interval
    const at = next;
    next += interval;
    if (at <= now) return true;
    return sleep(at - now, undefined, { signal }).then(
      () => true,
      () => false,
    );
  };
}

async function stockView(gateway: string, sku: string): Promise<{ available: number; version?: number } | undefined> {
  try {
    const res = await fetch(`${gateway}/v1/stock/${encodeURIComponent(sku)}`, { signal: AbortSignal.timeout(2000) });
    if (res.status !== 200) return undefined;
    return (await res.json()) as { available: number; version?: number };
  } catch {
    return undefined;
  }
}

export async function flashSale(o: FlashSaleOptions): Promise<number> {
  const config = loadConfigOrExit();
  const err = (m: string) => process.stderr.write(`error: ${m}\n`);
  const ready = await fetch(`${o.gateway}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (!ready) {
    err(`no gateway answers at ${o.gateway}: start the platform with \`npm start\` (or pass --gateway)`);
    return 1;
  }
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-simulate' });
  try {
    try {
      await pool.query('SELECT 1');
    } catch (e) {
      err(`Postgres at ${config.pg.host}:${config.pg.port} is not reachable (${(e as Error).message}): start the platform with \`npm start\``);
      return 1;
    }

    // Restock: available = units at WH-1; the SKU's other locations get nothing to sell.
    await inTransaction(pool, async (client) => {
      await client.query(`UPDATE stock_levels SET on_hand = reserved + safety_stock WHERE sku = $1 AND location_id <> 'WH-1' AND on_hand <> reserved + safety_stock`, [o.sku]);
      await client.query(
        `INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', $2)
         ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = stock_levels.reserved + stock_levels.safety_stock + $2`,
        [o.sku, o.units],
      );
    });
    const reservedBefore = Number((await pool.query<{ r: string }>(`SELECT coalesce(sum(reserved), 0) AS r FROM stock_levels WHERE sku = $1`, [o.sku])).rows[0]!.r);
    const demo = `${o.gateway}/?skus=${encodeURIComponent(o.sku)}`;
    process.stdout.write(`stocked ${o.sku}: ${o.units} units available at WH-1 (committed to Postgres)\nwatch it on the demo page: ${demo}\n`);

    const by = Date.now() + 30_000;
    for (;;) {
      const v = await stockView(o.gateway, o.sku);
      if (v?.available === o.units) break;
      if (Date.now() > by) {
        err(`the gateway did not report ${o.units} available for ${o.sku} within 30 s (it reports ${v ? v.available : 'nothing'}): is the stock processor running (\`npm start\` runs it)?`);
        return 1;
      }
      await sleep(200);
    }
    process.stdout.write(`the gateway reports ${o.units} available; ${o.shoppers} shoppers start buying at ${o.rate} attempts/s\n`);
    await sleep(1500); // a moment to look at the page

    let accepted = 0;
    let soldOut = 0;
    let other = 0;
    const otherKinds = new Map<string, number>();
    let available: number | undefined = o.units;
    const stopping = new AbortController();
    setMaxListeners(0, stopping.signal); // every waiting shopper listens
    const stopAll = () => stopping.abort();
    let interrupted = false;
    process.once('SIGINT', () => {
      interrupted = true;
      stopAll();
    });
    let noRoute = false;
    const started = performance.now();
    const pace = pacer(o.rate, stopping.signal);
    const tty = process.stderr.isTTY;
    const line = () => `accepted ${accepted} / sold out ${soldOut} / other ${other}   available ${available ?? '?'} (GET /v1/stock/${o.sku})   ${((performance.now() - started) / 1000).toFixed(1)} s`;
    const show = () => process.stderr.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
    const viewer = setInterval(() => {
      void stockView(o.gateway, o.sku).then((v) => {
        available = v?.available;
      });
      if (tty) show();
    }, 250);
    const printer = tty ? undefined : setInterval(show, 1000);

    const auth = shopperAuth(config);
    const shopper = async (i: number) => {
      const customerId = `shopper-${String(i + 1).padStart(4, '0')}`;
      const body = JSON.stringify({ items: [{ sku: o.sku, qty: 1 }] });
      while (await pace()) {
        let status = 0;
        let code = 'network_error';
        let retryAfterS = 0;
        try {
          const res = await fetch(`${o.gateway}/v1/purchases`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Idempotency-Key': randomUUID(), ...auth(customerId) },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          status = res.status;
          const j = (await res.json().catch(() => ({}))) as { error?: string };
          code = j.error ?? String(status);
          retryAfterS = Number(res.headers.get('retry-after') ?? 0) || 0;
        } catch {
          // counted as other
        }
        if (status === 201) accepted++;
        else if (status === 409 && code === 'sold_out') {
          soldOut++;
          stopAll(); // sold out: nobody starts another attempt
        } else {
          other++;
          const k = status ? `${status} ${code}` : code;
          otherKinds.set(k, (otherKinds.get(k) ?? 0) + 1);
          if (status === 404 && code === 'not_found') {
            noRoute = true;
            stopAll();
          }
          const backoff = retryAfterS > 0 ? Math.min(retryAfterS, 10) * 1000 : status ? 0 : 200;
          if (backoff) await sleep(backoff, undefined, { signal: stopping.signal }).catch(() => undefined);
        }
      }
    };
    await Promise.all(Array.from({ length: o.shoppers }, (_, i) => shopper(i)));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(viewer);
    if (printer) clearInterval(printer);
    if (noRoute) {
      if (tty) process.stderr.write('\n');
      err(`${o.gateway} has no POST /v1/purchases: this gateway predates the purchase path`);
      return 1;
    }

    // The view catches up with the write-backs (CDC), and Postgres holds exactly what was accepted.
    const settleBy = Date.now() + (interrupted ? 0 : 10_000);
    let view = await stockView(o.gateway, o.sku);
    while (view?.available !== 0 && Date.now() < settleBy) {
      await sleep(200);
      view = await stockView(o.gateway, o.sku);
    }
    available = view?.available;
    show();
    if (tty) process.stderr.write('\n');
    const reservedAfter = Number((await pool.query<{ r: string }>(`SELECT coalesce(sum(reserved), 0) AS r FROM stock_levels WHERE sku = $1`, [o.sku])).rows[0]!.r);
    const reservedDelta = reservedAfter - reservedBefore;
    const oversell = Math.max(0, accepted - o.units, reservedDelta - o.units);
    const ok = accepted === o.units && reservedDelta === accepted && oversell === 0;
    const kinds = [...otherKinds].map(([k, n]) => `${k} x${n}`).join(', ');
    process.stdout.write(
      [
        `${interrupted ? 'interrupted' : 'sold out'} after ${seconds.toFixed(1)} s: ${accepted} accepted of ${o.units} units, ${soldOut} sold-out answers, ${other} other${kinds ? ` (${kinds})` : ''}`,
        `Postgres: reserved on ${o.sku} rose by ${reservedDelta}; gateway view: ${view ? `${view.available} available` : 'no answer'}`,
        `oversell ${oversell}, undersell ${Math.max(0, o.units - accepted)}: ${ok ? 'ok' : 'CHECK FAILED'}`,
        `(the orders are holds: they expire after PURCHASE_HOLD_TTL_S unless confirmed; run this again to restock)`,
      ].join('\n') + '\n',
    );
    return interrupted ? 130 : ok ? 0 : 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}
