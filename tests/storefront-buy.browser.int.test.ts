/**
 * The storefront demo page's Buy button in a real browser, on the real purchase path and the real
 * pipeline: click in Chromium -> POST /v1/purchases -> gate (Redis) -> write-back (Postgres +
 * outbox) -> Debezium -> Kafka -> stock processor -> Redis -> gateway -> WebSocket -> the card.
 * A processor and a gateway run in-process on a private Redis prefix. A SKU with 3 units over two
 * locations is bought out one click at a time: the card counts down to 0 and disables its
 * button, Postgres holds exactly 3 reserved units in 3 orders, and nothing more can be bought.
 *
 * Within the gateway's per-customer limits (10 units per SKU, 5 attempts/s with a burst of 10,
 * pinned below): 3 purchases and 2 refused attempts, all by one fresh customer.
 */
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.ts';
import { createRedis } from '../lib/redis.ts';
import type { GatewayService } from '../gateway/service.ts';
import { cellValue, chromiumMissing, startStorefrontRig, stopStorefrontRig, storefrontUrl } from './browser-helpers.ts';
import { cleanUp, testConfig, testKafka, unique } from './helpers.ts';
import type { TestProcessor } from './processor-helpers.ts';

const baseConfig = testConfig();
const prefix = unique('buy').replaceAll('-', '').slice(0, 32);
const config = loadConfig({
  ...process.env,
  REDIS_PREFIX: prefix,
  PURCHASE_MAX_PER_CUSTOMER: '10',
  PURCHASE_RATE_CUSTOMER_PER_SEC: '5',
  PURCHASE_RATE_CUSTOMER_BURST: '10',
});
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const kafka = testKafka(baseConfig);
const sku = unique('BUY');
const UNITS = 3; // WH-1: 2, WH-2: 1

let processor: TestProcessor | undefined;
let gateway: GatewayService | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
const pageErrors: string[] = [];

interface PurchaseRecord {
  sku: string;
  idempotencyKey: string;
  status: number;
  error?: string;
  orderId?: string;
  message: string;
}

beforeAll(async () => {
  if (chromiumMissing) return;
  ({ processor, gateway, browser, page } = await startStorefrontRig({
    config,
    kafka,
    redis,
    pool,
    probeSku: `${sku}-probe`,
    pageErrors,
    stock: async () => {
      await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 2), ($1, 'WH-2', 1)`, [sku]);
      return [sku];
    },
  }));
});

afterAll(async () => {
  await stopStorefrontRig({ processor, gateway, browser, page });
  await pool.end();
  redis.disconnect();
  // The SKU, its probe and the orders the page placed.
  await cleanUp(config, { redisPrefixes: [prefix], skuPrefixes: [sku] });
});

function purchasesOf(p: Page): Promise<PurchaseRecord[]> {
  return p.evaluate('window.__purchases') as Promise<PurchaseRecord[]>;
}

describe('storefront Buy button in Chromium', () => {
  it('buys a SKU out one click at a time; the card counts down to 0 and disables its button', async () => {
    if (chromiumMissing) expect.fail(chromiumMissing);
    const p = page!;
    const response = await p.goto(storefrontUrl(gateway!.url, [sku]));
    expect(response?.status()).toBe(200);
    await expect.poll(() => p.locator('body').getAttribute('data-state'), { timeout: 15_000 }).toBe('open');
    await expect.poll(() => cellValue(p, sku, 'available'), { timeout: 15_000 }).toBe(String(UNITS));
    const buy = p.locator(`[data-sku="${sku}"] [data-testid="buy"]`);
    expect(await buy.isEnabled()).toBe(true);

    const customerId = (await p.evaluate('window.__customerId')) as string;
    expect(customerId).toMatch(/^web-[0-9a-f-]{36}$/);
    expect(await p.evaluate('localStorage.getItem("invsync.customerId")')).toBe(customerId);

    for (let n = 1; n <= UNITS; n++) {
      await buy.click(); // waits until the button is enabled (the previous purchase finished)
      await expect.poll(async () => (await purchasesOf(p)).length, { timeout: 15_000 }).toBe(n);
      const last = (await purchasesOf(p))[n - 1]!;
      expect(last, JSON.stringify(last)).toMatchObject({ sku, status: 201 });
      await expect.poll(() => cellValue(p, sku, 'buy-status'), { timeout: 5_000 }).toBe(`reserved · order ${last.orderId!.slice(0, 8)}`);
      // The purchase comes back through Postgres -> CDC -> processor -> feed.
      await expect.poll(() => cellValue(p, sku, 'available'), { timeout: 15_000 }).toBe(String(UNITS - n));
    }
    await expect.poll(() => buy.isDisabled(), { timeout: 5_000 }).toBe(true);
    expect(await buy.getAttribute('title')).toBe('sold out');

    const placed = await purchasesOf(p);
    const orderIds = placed.map((r) => r.orderId!);
    // A fresh Idempotency-Key per click.
    expect(new Set(placed.map((r) => r.idempotencyKey)).size).toBe(UNITS);

    // Postgres: every unit reserved, by 3 orders of this customer for this SKU.
    const levels = await pool.query<{ reserved: string; on_hand: string }>(
      `SELECT sum(reserved) AS reserved, sum(on_hand) AS on_hand FROM stock_levels WHERE sku = $1`,
      [sku],
    );
    expect(levels.rows[0]).toEqual({ reserved: String(UNITS), on_hand: String(UNITS) });
    const orders = await pool.query<{ id: string; customer_id: string; status: string; idempotency_key: string; qty: number }>(
      `SELECT o.id, o.customer_id, o.status, o.idempotency_key, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE l.sku = $1 ORDER BY o.created_at`,
      [sku],
    );
    expect(orders.rows.map((r) => r.id).sort()).toEqual([...orderIds].sort());
    // The demo page buys in the development anonymous mode: the customer is namespaced.
    for (const row of orders.rows) expect(row).toMatchObject({ customer_id: `anon:${customerId}`, status: 'reserved', qty: 1 });
    expect(orders.rows.map((r) => r.idempotency_key).sort()).toEqual(placed.map((r) => r.idempotencyKey).sort());
    const held = await pool.query<{ location_id: string; qty: string }>(
      `SELECT location_id, sum(qty) AS qty FROM reservations WHERE sku = $1 GROUP BY location_id ORDER BY location_id`,
      [sku],
    );
    expect(held.rows).toEqual([
      { location_id: 'WH-1', qty: '2' },
      { location_id: 'WH-2', qty: '1' },
    ]);

    // A further click is not possible: the disabled button does not fire.
    await buy.click({ force: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(await purchasesOf(p)).toHaveLength(UNITS);

    // And were it enabled (a stale page), the gate answers sold out and the card says so.
    await p.evaluate(`document.querySelector(${JSON.stringify(`[data-sku="${sku}"] [data-testid="buy"]`)}).disabled = false`);
    await buy.click();
    await expect.poll(async () => (await purchasesOf(p)).length, { timeout: 15_000 }).toBe(UNITS + 1);
    expect((await purchasesOf(p))[UNITS]).toMatchObject({ sku, status: 409, error: 'sold_out' });
    expect(await cellValue(p, sku, 'buy-status')).toBe('sold out');
    expect(await p.locator(`[data-sku="${sku}"] [data-testid="buy-status"]`).getAttribute('data-outcome')).toBe('sold_out');
    expect(await buy.isDisabled()).toBe(true);

    // Still exactly 3 orders and 3 reserved units.
    const after = await pool.query<{ n: string; reserved: string }>(
      `SELECT (SELECT count(*) FROM order_lines WHERE sku = $1) AS n, (SELECT sum(reserved) FROM stock_levels WHERE sku = $1) AS reserved`,
      [sku],
    );
    expect(after.rows[0]).toEqual({ n: String(UNITS), reserved: String(UNITS) });
    expect(await cellValue(p, sku, 'available')).toBe('0');
    // Chromium logs every non-2xx fetch as a console error; the 409 above was provoked on purpose.
    const expected = 'console: Failed to load resource: the server responded with a status of 409 (Conflict)';
    expect(pageErrors.filter((e) => e !== expected)).toEqual([]);
  });
});
