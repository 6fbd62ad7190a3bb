/**
 * The storefront demo page (gateway/public) in a real browser, on the real pipeline:
 * Postgres -> Debezium -> Kafka -> stock processor -> Redis -> gateway -> WebSocket -> SDK in
 * Chromium -> DOM. A processor and a gateway run in-process on a private Redis prefix; the page
 * shows SKUs inserted before it opened (snapshot), then an UPDATE in Postgres (delta).
 *
 * Needs Chromium at /usr/bin/chromium (Debian package `chromium`, installed by .ci/run) and the
 * `playwright-core` dev dependency (which drives it; no browser download). Without Chromium the
 * test fails rather than skips.
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
const prefix = unique('web').replaceAll('-', '').slice(0, 32);
const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const kafka = testKafka(baseConfig);
const skuPrefix = unique('WEB');
const skus = [1, 2, 3].map((i) => `${skuPrefix}-${i}`);

let processor: TestProcessor | undefined;
let gateway: GatewayService | undefined;
let browser: Browser | undefined;
let page: Page | undefined;
/** Uncaught errors in the page and console errors, reported by the test. */
const pageErrors: string[] = [];

beforeAll(async () => {
  // Without Chromium nothing is started, and the test itself fails (a failing hook would only
  // report the test as skipped).
  if (chromiumMissing) return;
  ({ processor, gateway, browser, page } = await startStorefrontRig({
    config,
    kafka,
    redis,
    pool,
    probeSku: `${skuPrefix}-probe`,
    pageErrors,
    // Stock that exists before the page opens: it must arrive in the page's snapshot.
    stock: async () => {
      await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT s, 'WH-1', 10 FROM unnest($1::text[]) AS s`, [skus]);
      return skus;
    },
  }));
});

afterAll(async () => {
  await stopStorefrontRig({ processor, gateway, browser, page });
  await pool.end();
  redis.disconnect();
  await cleanUp(config, { redisPrefixes: [prefix], skuPrefixes: [skuPrefix] });
});

describe('storefront demo page in Chromium', () => {
  it('shows the snapshot, then a Postgres update within seconds, with its commit->browser lag', async () => {
    if (chromiumMissing) expect.fail(chromiumMissing);
    const p = page!;
    const response = await p.goto(storefrontUrl(gateway!.url, skus));
    expect(response?.status()).toBe(200);

    // Connected, and the snapshot drawn: every cell shows 10.
    await expect.poll(() => p.locator('body').getAttribute('data-state'), { timeout: 15_000 }).toBe('open');
    expect(await p.locator('[data-sku]').count()).toBe(skus.length);
    for (const sku of skus) {
      await expect.poll(() => cellValue(p, sku, 'available'), { timeout: 15_000 }).toBe('10');
    }
    const target = skus[0]!;
    const versionBefore = Number(await cellValue(p, target, 'version'));
    expect(Number.isInteger(versionBefore)).toBe(true);
    const held = (await p.evaluate(`window.__stock[${JSON.stringify(target)}]`)) as { available: number; version: number } | undefined;
    expect(held).toMatchObject({ sku: target, available: 10, version: versionBefore });

    // A committed change in Postgres reaches the page.
    await pool.query(`UPDATE stock_levels SET on_hand = 17 WHERE sku = $1 AND location_id = 'WH-1'`, [target]);
    await expect.poll(() => cellValue(p, target, 'available'), { timeout: 15_000 }).toBe('17');
    const versionAfter = Number(await cellValue(p, target, 'version'));
    expect(versionAfter).toBeGreaterThan(versionBefore);
    const lagText = await cellValue(p, target, 'lag');
    expect(lagText).toMatch(/^-?\d+$/);
    const lag = Number(lagText);
    expect(lag).toBeGreaterThanOrEqual(-1000); // same machine: at most clock jitter below zero
    expect(lag).toBeLessThan(15_000);
    // The header's running stats picked the change up.
    await expect.poll(() => p.locator('[data-testid="lag-p50"]').innerText(), { timeout: 5_000 }).toMatch(/^-?\d+$/);
    expect(await p.evaluate(`window.__stock[${JSON.stringify(target)}].available`)).toBe(17);

    // The untouched SKUs kept their values.
    for (const sku of skus.slice(1)) expect(await cellValue(p, sku, 'available')).toBe('10');
    expect(pageErrors).toEqual([]);
  });
});
