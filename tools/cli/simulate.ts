/**
 * `npm run simulate -- <simulation> [options]`: traffic against a RUNNING platform (`npm start`),
 * for demos and for trying the connectors (docs/inspect-and-simulate.md).
 *
 *   flash-sale  (re)stocks a hot SKU in Postgres with plain SQL (available = --units at WH-1,
 *               nothing at its other locations), waits until the gateway reports it, then
 *               --shoppers concurrent shoppers try to buy qty 1 each, at --rate attempts/s in all,
 *               with a fresh Idempotency-Key per attempt, until the gateway answers sold out; the
 *               summary is checked against Postgres (reserved rose by exactly the number accepted).
 *               The shoppers share one keep-alive HTTP agent; 429 answers are honoured.
 *   wms         a warehouse system: receipts, picks, counts, transfers, returns and damage as Avro
 *               `StockAdjustment`s on `stock.adjustments` (key = sku, unique adjustment ids), over
 *               the seeded catalog SKU-000001... x WH-1...; popular SKUs move more.
 *   erp         an ERP: fewer, larger documents — goods receipts and inventory counts, and now and
 *               then a bulk correction (a run of counts at one location under one reference).
 *   shoppers    browsing (GET /v1/stock) and buying (POST /v1/purchases with Idempotency-Key,
 *               now and then a replayed key), then confirming, cancelling or leaving holds to expire.
 *
 * wms and erp only produce; applying the adjustments is the inbound connector's job (look at them
 * with `npm run inspect -- stock.adjustments`). Quantities follow the StockAdjustment contract:
 * positive, the kind gives the direction, COUNT carries the counted figure. A local model of
 * on-hand stock keeps them plausible (no pick beyond what is there); it is read from Postgres at
 * start when reachable, else from the demo seed's formula.
 *
 * Each shows one progress line (redrawn on a terminal) and prints a summary. Exit codes: 0 done,
 * 1 a service is unreachable or a check failed, 2 bad arguments, 130 interrupted before the end.
 * Loopback gateways only: this is a load generator.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerStockSchemas, type StockCodecs } from '../../lib/avro-registry.ts';
import { loadConfigOrExit, type Config } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { locationId, skuId } from '../../lib/seed.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { AdjustmentKind, StockAdjustment } from '../../schemas/generated/avro-types.ts';
import { redactUrl } from '../../lib/redact.ts';

const USAGE = `usage: npm run simulate -- <simulation> [options]
  flash-sale [--sku FLASH-DEMO] [--units 200] [--shoppers 500] [--rate 50] [--gateway URL]
             restock a hot SKU and let many shoppers race for it through POST /v1/purchases
  wms        [--rate 20] [--seconds S | --count N] [--source wms-sim-1] [--skus N] [--locations N] [--seed N]
             receipts, picks, counts, transfers, returns, damage -> stock.adjustments (rate: adjustments/s)
  erp        [--rate 1] [--seconds S | --count N] [--source erp-sim-1] [--skus N] [--locations N] [--seed N]
             goods receipts, counts, bulk corrections -> stock.adjustments (rate: documents/s)
  shoppers   [--rate 5] [--seconds S | --count N] [--shoppers 50] [--skus N] [--gateway URL] [--seed N]
             browse GET /v1/stock, buy POST /v1/purchases, confirm / cancel (rate: actions/s)
  Without --seconds or --count, wms / erp / shoppers run until Ctrl-C. --skus / --locations default
  to SEED_SKUS / SEED_LOCATIONS (the demo catalog); --gateway to GATEWAY_HOST:GATEWAY_PORT.`;

/** A missing or unavailable simulation: the error and the usage. */
function usage(message: string): never {
  process.stderr.write(`error: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** A bad option: one line. */
function bad(message: string): never {
  process.stderr.write(`error: ${message} (npm run simulate -- --help)\n`);
  process.exit(2);
}

interface FlashSaleOptions {
  sku: string;
  units: number;
  shoppers: number;
  rate: number;
  gateway: string;
}

function parseFlashSale(argv: string[]): FlashSaleOptions {
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

/**
 * How simulated shoppers authenticate (docs/security.md#credentials-who-may-do-what): as a storefront backend
 * (the first configured API key with purchase:act-for; the development key dev-storefront-key
 * by default) naming each shopper in X-Customer-Id, which also lets it confirm and cancel their
 * orders. Without such a key, anonymously (development mode, PURCHASE_ALLOW_ANONYMOUS=1).
 */
function shopperAuth(config: Config): (customerId: string) => Record<string, string> {
  const key = config.gateway.apiKeys.find((k) => k.scopes.includes('purchase:act-for'))?.key;
  return (customerId): Record<string, string> => (key ? { Authorization: `Bearer ${key}`, 'X-Customer-Id': customerId } : { 'X-Customer-Id': customerId });
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

async function flashSale(o: FlashSaleOptions): Promise<number> {
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
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE stock_levels SET on_hand = reserved + safety_stock WHERE sku = $1 AND location_id <> 'WH-1' AND on_hand <> reserved + safety_stock`, [o.sku]);
      await client.query(
        `INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', $2)
         ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = stock_levels.reserved + stock_levels.safety_stock + $2`,
        [o.sku, o.units],
      );
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
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

// ---------------------------------------------------------------------------------------------
// wms, erp, shoppers: shared option parsing, pacing and progress

interface RunOptions {
  rate: number;
  seconds: number | undefined;
  count: number | undefined;
  seed: number;
  skus: number;
  locations: number;
  source: string;
  shoppers: number;
  gateway: string;
}

type Simulation = 'wms' | 'erp' | 'shoppers';

const RUN_FLAGS: Record<Simulation, string[]> = {
  wms: ['--rate', '--seconds', '--count', '--seed', '--skus', '--locations', '--source'],
  erp: ['--rate', '--seconds', '--count', '--seed', '--skus', '--locations', '--source'],
  shoppers: ['--rate', '--seconds', '--count', '--seed', '--skus', '--shoppers', '--gateway'],
};

function loopbackGateway(value: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    bad(`${flag} must be a URL such as http://127.0.0.1:18080 (got ${JSON.stringify(value)})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`${flag} must be an http:// URL (got ${JSON.stringify(value)})`);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) bad(`${flag} must be on this machine (loopback), got ${u.hostname}`);
  return u.origin;
}

function parseRun(kind: Simulation, argv: string[], config: Config): RunOptions {
  const host = ['0.0.0.0', '::'].includes(config.gateway.host) ? '127.0.0.1' : config.gateway.host;
  const o: RunOptions = {
    rate: kind === 'wms' ? 20 : kind === 'erp' ? 1 : 5,
    seconds: undefined,
    count: undefined,
    seed: randomInt(1, 2 ** 31),
    skus: config.seed.skus,
    locations: config.seed.locations,
    source: `${kind}-sim-1`,
    shoppers: 50,
    gateway: `http://${host.includes(':') ? `[${host}]` : host}:${config.gateway.port}`,
  };
  const int = (flag: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) bad(`${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  const positive = (flag: string, raw: string, max: number, what: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || n > max) bad(`${flag} must be a number of ${what} above 0, at most ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!flag.startsWith('--')) bad(`unexpected argument ${JSON.stringify(flag)}`);
    if (!RUN_FLAGS[kind].includes(flag)) bad(`unknown option ${flag} for ${kind} (it takes ${RUN_FLAGS[kind].join(', ')})`);
    if (value === undefined || value.startsWith('--')) bad(`${flag} needs a value`);
    switch (flag) {
      case '--rate':
        o.rate = positive(flag, value, 100_000, kind === 'erp' ? 'documents per second' : kind === 'wms' ? 'adjustments per second' : 'actions per second');
        break;
      case '--seconds':
        o.seconds = positive(flag, value, 7 * 24 * 3600, 'seconds');
        break;
      case '--count':
        o.count = int(flag, value, 1, 100_000_000);
        break;
      case '--seed':
        o.seed = int(flag, value, 0, 2 ** 31 - 1);
        break;
      case '--skus':
        o.skus = int(flag, value, 1, 10_000_000);
        break;
      case '--locations':
        o.locations = int(flag, value, 1, 1000);
        break;
      case '--shoppers':
        o.shoppers = int(flag, value, 1, 100_000);
        break;
      case '--source':
        if (!/^[\x21-\x7e]{1,64}$/.test(value)) bad(`--source must be 1 to 64 printable characters without spaces (got ${JSON.stringify(value)})`);
        o.source = value;
        break;
      case '--gateway':
        o.gateway = loopbackGateway(value, flag);
        break;
    }
  }
  if (o.seconds !== undefined && o.count !== undefined) bad('give --seconds or --count, not both');
  return o;
}

/** mulberry32: a small seeded PRNG, so `--seed` replays the same mix. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks a key of `weights` with probability proportional to its weight. */
function weighted<K extends string>(rng: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as Array<[K, number]>;
  let r = rng() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    r -= w;
    if (r < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

/**
 * Calls `step(n)` with the units due at `rate`/s (checked every few ms; a slow step makes the next
 * one bigger) until `--seconds` / `--count` or Ctrl-C, and shows one progress line.
 */
async function paced(
  o: RunOptions,
  label: string,
  unit: string,
  step: (due: number) => Promise<void>,
  progress: () => string,
): Promise<{ seconds: number; interrupted: boolean }> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let done = 0;
  let interrupted = false;
  const stop = new AbortController();
  const onSigint = () => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  const line = () => `${label}: ${progress()}   ${(done / Math.max(elapsed(), 0.001)).toFixed(1)} ${unit}/s   ${elapsed().toFixed(1)} s${o.seconds ? ` of ${o.seconds}` : o.count ? `   ${done}/${o.count}` : '   Ctrl-C to stop'}`;
  const show = () => process.stderr.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
  const printer = setInterval(show, tty ? 250 : 2000);
  try {
    // Bounded runs do exactly their share: rate x seconds, or count.
    const total = o.seconds !== undefined ? Math.floor(o.seconds * o.rate) : o.count;
    while (!stop.signal.aborted) {
      const t = elapsed();
      const over = o.seconds !== undefined && t >= o.seconds;
      const target = total === undefined ? Math.floor(t * o.rate) : over ? total : Math.min(total, Math.floor(t * o.rate));
      const due = target - done;
      if (due > 0) {
        await step(due);
        done += due;
      } else if (total !== undefined && done >= total) break;
      else await sleep(Math.min(50, Math.max(1, ((done + 1) / o.rate - t) * 1000)), undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    clearInterval(printer);
    process.removeListener('SIGINT', onSigint);
    show();
    if (tty) process.stderr.write('\n');
  }
  return { seconds: elapsed(), interrupted };
}

// ---------------------------------------------------------------------------------------------
// wms and erp: adjustments on stock.adjustments

/** A local picture of on-hand stock, so picks never exceed what is there and counts look real. */
class StockModel {
  private readonly onHand = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  source = 'the seed formula';

  constructor(readonly skus: number, readonly locations: number) {}

  private key(s: number, l: number): string {
    return `${s}|${l}`;
  }

  /** The demo seed's quantities (lib/seed.ts), for when Postgres is not reachable. */
  private seeded(s: number, l: number): number {
    return ((s * 7 + l * 13) % 50) + 5;
  }

  async load(config: Config): Promise<void> {
    if (this.skus * this.locations > 300_000) return;
    const pool = createPgPool(config.pg.url, { max: 1, application: 'invsync-simulate' });
    try {
      const skus = Array.from({ length: this.skus }, (_, i) => skuId(i + 1));
      const locs = Array.from({ length: this.locations }, (_, i) => locationId(i + 1));
      const { rows } = await pool.query<{ sku: string; location_id: string; on_hand: number; reserved: number }>(
        'SELECT sku, location_id, on_hand, reserved FROM stock_levels WHERE sku = ANY($1::text[]) AND location_id = ANY($2::text[])',
        [skus, locs],
      );
      for (const r of rows) {
        const s = Number(r.sku.slice(4));
        const l = Number(r.location_id.slice(3));
        this.onHand.set(this.key(s, l), r.on_hand);
        this.reserved.set(this.key(s, l), r.reserved);
      }
      this.source = `Postgres (${rows.length} rows)`;
    } catch {
      // Not reachable: the seed formula stands in.
    } finally {
      await pool.end().catch(() => undefined);
    }
  }

  get(s: number, l: number): { onHand: number; reserved: number; sellable: number } {
    const onHand = this.onHand.get(this.key(s, l)) ?? this.seeded(s, l);
    const reserved = this.reserved.get(this.key(s, l)) ?? 0;
    return { onHand, reserved, sellable: Math.max(0, onHand - reserved) };
  }

  add(s: number, l: number, delta: number): void {
    this.onHand.set(this.key(s, l), Math.max(0, this.get(s, l).onHand + delta));
  }

  set(s: number, l: number, value: number): void {
    this.onHand.set(this.key(s, l), value);
  }
}

interface AdjustmentRun {
  model: StockModel;
  rng: () => number;
  runId: string;
  seq: number;
  docs: number;
  kinds: Map<string, number>;
  touched: Set<string>;
}

function newAdjustment(o: RunOptions, run: AdjustmentRun, s: number, l: number, kind: AdjustmentKind, quantity: number, reference: string, toLocation?: number): StockAdjustment {
  run.seq++;
  run.kinds.set(kind, (run.kinds.get(kind) ?? 0) + 1);
  run.touched.add(skuId(s));
  return {
    adjustmentId: `${o.source}-${run.runId}-${String(run.seq).padStart(6, '0')}`,
    sku: skuId(s),
    locationId: locationId(l),
    kind,
    quantity,
    toLocationId: toLocation === undefined ? null : locationId(toLocation),
    occurredAt: Date.now(),
    sourceSystem: o.source,
    reference,
  };
}

/** Popular SKUs move more: the square of a uniform draw favours low numbers. */
function pickSku(run: AdjustmentRun, skus: number): number {
  return Math.min(skus, 1 + Math.floor(skus * run.rng() ** 2));
}

function pickLocation(run: AdjustmentRun, locations: number): number {
  return 1 + Math.floor(run.rng() * locations);
}

const CASE_SIZES = [6, 12, 24, 48];

/** One warehouse event, kept consistent with the model (no pick beyond what is there). */
function wmsEvent(o: RunOptions, run: AdjustmentRun): StockAdjustment {
  const m = run.model;
  const s = pickSku(run, o.skus);
  const l = pickLocation(run, o.locations);
  const here = m.get(s, l);
  const ref = (prefix: string) => `${prefix}-${String(10_000 + Math.floor(run.rng() * 90_000))}`;
  let kind = weighted(run.rng, { PICK: 40, RECEIPT: 20, COUNT: 12, TRANSFER: 10, RETURN: 10, DAMAGE: 8 } as Record<AdjustmentKind, number>);
  if ((kind === 'PICK' || kind === 'DAMAGE') && here.sellable < 1) kind = 'RECEIPT';
  if (kind === 'TRANSFER' && (o.locations < 2 || here.sellable < 2)) kind = 'RECEIPT';
  switch (kind) {
    case 'PICK': {
      const q = 1 + Math.floor(run.rng() * Math.min(4, here.sellable));
      m.add(s, l, -q);
      return newAdjustment(o, run, s, l, 'PICK', q, ref('SO'));
    }
    case 'DAMAGE':
      m.add(s, l, -1);
      return newAdjustment(o, run, s, l, 'DAMAGE', 1, ref('DMG'));
    case 'RETURN': {
      const q = 1 + Math.floor(run.rng() * 2);
      m.add(s, l, q);
      return newAdjustment(o, run, s, l, 'RETURN', q, ref('RMA'));
    }
    case 'COUNT': {
      const discrepancy = [-2, -1, 0, 0, 0, 1][Math.floor(run.rng() * 6)]!;
      const figure = Math.max(here.reserved, here.onHand + discrepancy);
      m.set(s, l, figure);
      return newAdjustment(o, run, s, l, 'COUNT', figure, ref('CC'));
    }
    case 'TRANSFER': {
      const to = ((l + Math.floor(run.rng() * (o.locations - 1))) % o.locations) + 1;
      const q = 1 + Math.floor(run.rng() * Math.min(10, here.sellable - 1));
      m.add(s, l, -q);
      m.add(s, to, q);
      return newAdjustment(o, run, s, l, 'TRANSFER', q, ref('TR'), to);
    }
    default: {
      const q = CASE_SIZES[Math.floor(run.rng() * CASE_SIZES.length)]!;
      m.add(s, l, q);
      return newAdjustment(o, run, s, l, 'RECEIPT', q, ref('PO'));
    }
  }
}

/** One ERP document: a goods receipt, an inventory count, or a bulk correction (many counts). */
function erpDocument(o: RunOptions, run: AdjustmentRun): StockAdjustment[] {
  const m = run.model;
  run.docs++;
  const doc = `${String(run.docs).padStart(6, '0')}`;
  const kind = weighted(run.rng, { receipt: 60, count: 35, correction: 5 });
  const s = pickSku(run, o.skus);
  const l = pickLocation(run, o.locations);
  if (kind === 'receipt') {
    const q = 24 * (1 + Math.floor(run.rng() * 20));
    m.add(s, l, q);
    return [newAdjustment(o, run, s, l, 'RECEIPT', q, `ERP-GR-${run.runId}-${doc}`)];
  }
  if (kind === 'count') {
    const here = m.get(s, l);
    const figure = Math.max(here.reserved, here.onHand + Math.floor(run.rng() * 11) - 5);
    m.set(s, l, figure);
    return [newAdjustment(o, run, s, l, 'COUNT', figure, `ERP-INV-${run.runId}-${doc}`)];
  }
  // A bulk correction: a run of consecutive SKUs recounted at one location under one reference.
  const size = Math.min(o.skus, 20 + Math.floor(run.rng() * 81));
  const first = 1 + Math.floor(run.rng() * (o.skus - size + 1));
  const reference = `ERP-CORR-${run.runId}-${doc}`;
  return Array.from({ length: size }, (_, i) => {
    const here = m.get(first + i, l);
    const figure = Math.max(here.reserved, here.onHand + Math.floor(run.rng() * 7) - 3);
    m.set(first + i, l, figure);
    return newAdjustment(o, run, first + i, l, 'COUNT', figure, reference);
  });
}

async function adjustments(kind: 'wms' | 'erp', o: RunOptions, config: Config): Promise<number> {
  const err = (m: string) => process.stderr.write(`error: ${m}\n`);
  const kafka = createKafka({ connection: config.kafka, clientId: `invsync-simulate-${kind}`, overrides: { connectionTimeout: 3000, retry: { initialRetryTime: 200, retries: 3 } } });
  let codecs: StockCodecs;
  try {
    codecs = await registerStockSchemas(config.registry);
  } catch (e) {
    err(`the schema registry at ${redactUrl(config.registry.url)} is not usable (${errorMessage(e)}): is the stack up? npm run stack -- status`);
    return 1;
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  try {
    await producer.connect();
  } catch (e) {
    err(`Kafka is not reachable at ${config.kafka.brokers.join(',')} (${errorMessage(e)}): is the stack up? npm run stack -- status`);
    return 1;
  }
  const model = new StockModel(o.skus, o.locations);
  await model.load(config);
  const run: AdjustmentRun = { model, rng: prng(o.seed), runId: `${Date.now().toString(36)}${randomInt(36 ** 2).toString(36)}`, seq: 0, docs: 0, kinds: new Map(), touched: new Set() };
  process.stderr.write(
    `${kind}: ${o.source} sends to ${TOPICS.stockAdjustments} at ${o.rate} ${kind === 'erp' ? 'documents' : 'adjustments'}/s over ${o.skus} SKUs x ${o.locations} locations (stock model: ${model.source}; --seed ${o.seed})\n`,
  );
  const firstId = `${o.source}-${run.runId}-000001`;
  let failed: unknown;
  const kindsText = () => [...run.kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ') || 'nothing yet';
  const { seconds, interrupted } = await paced(
    o,
    kind,
    kind === 'erp' ? 'documents' : 'adjustments',
    async (due) => {
      if (failed) return;
      const list = kind === 'wms' ? Array.from({ length: due }, () => wmsEvent(o, run)) : Array.from({ length: due }, () => erpDocument(o, run)).flat();
      try {
        const messages = await Promise.all(list.map(async (a) => ({ key: a.sku, value: await codecs.stockAdjustment.encode(a) })));
        await producer.send({ topic: TOPICS.stockAdjustments, acks: -1, messages });
      } catch (e) {
        failed = e;
      }
    },
    () => `${run.seq} adjustments${kind === 'erp' ? ` in ${run.docs} documents` : ''} (${kindsText()})`,
  );
  await producer.disconnect().catch(() => undefined);
  const sent = failed ? 'some' : String(run.seq);
  process.stdout.write(
    [
      `${kind}: ${interrupted ? 'interrupted after' : 'done in'} ${seconds.toFixed(1)} s: ${sent} adjustments${kind === 'erp' ? ` in ${run.docs} documents` : ''} sent to ${TOPICS.stockAdjustments} by ${o.source} (${(run.seq / Math.max(seconds, 0.001)).toFixed(1)}/s): ${kindsText()}`,
      `${run.touched.size} SKUs touched; adjustment ids ${firstId} ... ${o.source}-${run.runId}-${String(run.seq).padStart(6, '0')}`,
      `look at them: npm run inspect -- ${TOPICS.stockAdjustments} --limit 3`,
    ].join('\n') + '\n',
  );
  if (failed) {
    err(`producing to ${TOPICS.stockAdjustments} failed: ${errorMessage(failed)}`);
    return 1;
  }
  return interrupted && (o.seconds !== undefined || o.count !== undefined) ? 130 : 0;
}

// ---------------------------------------------------------------------------------------------
// shoppers: browse and buy through the gateway

interface Tally {
  [outcome: string]: number;
}

function bump(t: Tally, k: string, n = 1): void {
  t[k] = (t[k] ?? 0) + n;
}

function tallyText(t: Tally): string {
  return Object.entries(t)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

async function shoppers(o: RunOptions, config: Config): Promise<number> {
  const auth = shopperAuth(config);
  const err = (m: string) => process.stderr.write(`error: ${m}\n`);
  const ready = await fetch(`${o.gateway}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (!ready) {
    err(`no gateway answers at ${o.gateway}: start the platform with \`npm start\` (or pass --gateway)`);
    return 1;
  }
  const rng = prng(o.seed);
  const browse: Tally = {};
  const buy: Tally = {};
  const after: Tally = {};
  const lastPurchase = new Map<number, { key: string; body: string; orderId: string; customer: string }>();
  const inFlight = new Set<Promise<void>>();
  const followUps = new Map<NodeJS.Timeout, () => void>();
  let skipped = 0;
  let noRoute = false;
  const MAX_IN_FLIGHT = 256;
  const sku = () => skuId(Math.min(o.skus, 1 + Math.floor(o.skus * rng() ** 2)));

  const call = async (method: 'GET' | 'POST', path: string, init: { body?: string; key?: string; customer?: string } = {}) => {
    const res = await fetch(`${o.gateway}${path}`, {
      method,
      headers: {
        ...(init.body ? { 'Content-Type': 'application/json' } : {}),
        ...(init.key ? { 'Idempotency-Key': init.key } : {}),
        ...(init.customer ? auth(init.customer) : {}),
      },
      ...(init.body ? { body: init.body } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await res.json().catch(() => ({}))) as { error?: string; orderId?: string; status?: string };
    return { status: res.status, json, replayed: res.headers.get('idempotent-replayed') === 'true' };
  };
  const outcome = (r: { status: number; json: { error?: string } }) => (r.status >= 200 && r.status < 300 ? String(r.status) : `${r.status} ${r.json.error ?? ''}`.trim());

  const followUp = (orderId: string, customer: string) => {
    const what = weighted(rng, { confirm: 40, cancel: 20, expire: 40 });
    if (what === 'expire') {
      bump(after, 'left to expire');
      return;
    }
    const run = () => {
      followUps.delete(t);
      track(
        call('POST', `/v1/orders/${encodeURIComponent(orderId)}/${what}`, { customer }).then(
          (r) => bump(after, r.status === 200 ? (what === 'confirm' ? 'confirmed' : 'cancelled') : `${what} ${outcome(r)}`),
          () => bump(after, `${what} network error`),
        ),
      );
    };
    const t = setTimeout(run, 500 + Math.floor(rng() * 2500));
    followUps.set(t, run);
  };

  const action = async () => {
    const customer = Math.floor(rng() * o.shoppers);
    const what = weighted(rng, { view: 50, list: 20, buy: 27, replay: 3 });
    try {
      if (what === 'view') {
        const r = await call('GET', `/v1/stock/${encodeURIComponent(sku())}`);
        bump(browse, r.status === 200 ? 'ok' : outcome(r));
      } else if (what === 'list') {
        const skus = [...new Set(Array.from({ length: 2 + Math.floor(rng() * 4) }, sku))];
        const r = await call('GET', `/v1/stock?skus=${skus.map(encodeURIComponent).join(',')}`);
        bump(browse, r.status === 200 ? 'ok' : outcome(r));
      } else {
        const previous = lastPurchase.get(customer);
        if (what === 'replay' && previous) {
          // The same key and body again (a client retrying): the same order, not a second one.
          const r = await call('POST', '/v1/purchases', { body: previous.body, key: previous.key, customer: previous.customer });
          bump(buy, r.status === 201 && r.replayed && r.json.orderId === previous.orderId ? 'replayed (same order)' : `replay ${outcome(r)}`);
          return;
        }
        const items = [...new Set(Array.from({ length: rng() < 0.7 ? 1 : 2 }, sku))].map((s) => ({ sku: s, qty: rng() < 0.8 ? 1 : 2 }));
        const customerId = `sim-shopper-${String(customer + 1).padStart(5, '0')}`;
        const body = JSON.stringify({ items });
        const key = randomUUID();
        const r = await call('POST', '/v1/purchases', { body, key, customer: customerId });
        if (r.status === 201 && r.json.orderId) {
          bump(buy, 'reserved');
          lastPurchase.set(customer, { key, body, orderId: r.json.orderId, customer: customerId });
          followUp(r.json.orderId, customerId);
        } else {
          if (r.status === 404 && r.json.error === 'not_found') noRoute = true;
          bump(buy, r.status === 202 ? 'waitlisted' : r.json.error ?? String(r.status));
        }
      }
    } catch {
      bump(what === 'view' || what === 'list' ? browse : buy, 'network error');
    }
  };

  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  process.stderr.write(`shoppers: ${o.shoppers} shoppers at ${o.rate} actions/s against ${o.gateway} over ${o.skus} SKUs (--seed ${o.seed})\n`);
  const { seconds, interrupted } = await paced(
    o,
    'shoppers',
    'actions',
    async (due) => {
      for (let i = 0; i < due; i++) {
        if (inFlight.size >= MAX_IN_FLIGHT) skipped++;
        else track(action());
      }
    },
    () => `browse ${tallyText(browse) || '-'} | buy ${tallyText(buy) || '-'} | after ${tallyText(after) || '-'}${skipped ? ` | skipped ${skipped} (gateway slow)` : ''}`,
  );
  // Requests still running finish; confirms and cancels still scheduled are sent now, so every
  // decided follow-up is counted.
  const settle = () => Promise.race([Promise.allSettled([...inFlight]), sleep(10_000)]);
  await settle();
  for (const [t, run] of [...followUps]) {
    clearTimeout(t);
    run();
  }
  await settle();
  if (noRoute) {
    err(`${o.gateway} has no POST /v1/purchases: this gateway predates the purchase path`);
    return 1;
  }
  process.stdout.write(
    [
      `shoppers: ${interrupted ? 'interrupted after' : 'done in'} ${seconds.toFixed(1)} s against ${o.gateway}`,
      `  browse: ${tallyText(browse) || 'none'}`,
      `  buy:    ${tallyText(buy) || 'none'}`,
      `  after:  ${tallyText(after) || 'none'}`,
      ...(skipped ? [`  skipped ${skipped} actions: ${MAX_IN_FLIGHT} requests were already waiting on the gateway`] : []),
      `  (holds not confirmed expire after PURCHASE_HOLD_TTL_S; orders.events shows them: npm run inspect -- orders.events --limit 5)`,
    ].join('\n') + '\n',
  );
  return interrupted && (o.seconds !== undefined || o.count !== undefined) ? 130 : 0;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === undefined || command === '--help' || command === '-h') {
    process.stderr.write(`${USAGE}\n`);
    process.exit(command === undefined ? 2 : 0);
  }
  if (command === 'flash-sale') process.exit(await flashSale(parseFlashSale(rest)));
  if (command !== 'wms' && command !== 'erp' && command !== 'shoppers') usage(`unknown simulation ${JSON.stringify(command)}`);
  const config = loadConfigOrExit();
  const o = parseRun(command, rest, config);
  process.exit(command === 'shoppers' ? await shoppers(o, config) : await adjustments(command, o, config));
}

await main();
