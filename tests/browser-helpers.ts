/**
 * Shared setup of the browser tests (the storefront demo page in real headless Chromium, driven
 * by playwright-core): where Chromium is, how it is launched, how page errors are collected, and
 * how a card of the live grid is read.
 *
 * Needs Chromium at /usr/bin/chromium (Debian package `chromium`, installed by .ci/run and by the
 * global setup when run as root) and the `playwright-core` dev dependency (which drives it; no
 * browser download). Without Chromium a browser test fails rather than skips: check
 * `chromiumMissing` in `beforeAll` (start nothing) and fail the test itself with it.
 */
import fs from 'node:fs';
import type { RedisClient } from '../lib/redis.ts';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import type { Config } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { unique } from './helpers.ts';
import { startTestProcessor, waitProcessorLive, waitUntil, type TestProcessor } from './processor-helpers.ts';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** Why the browser tests cannot run, or undefined when Chromium is there. */
export const chromiumMissing: string | undefined = fs.existsSync(CHROMIUM)
  ? undefined
  : `Chromium not found at ${CHROMIUM}: the storefront browser tests need it. Install it with ` +
    '`apt-get install -y chromium` (Debian; .ci/run does this on a fresh machine).';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Collects the page's uncaught errors and console errors into `sink` (a test expects it empty). */
export function collectPageErrors(page: Page, sink: string[] = []): string[] {
  page.on('pageerror', (err) => sink.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') sink.push(`console: ${msg.text()}`);
  });
  return sink;
}

/** The storefront page's URL showing exactly `skus`. */
export function storefrontUrl(gatewayUrl: string, skus: string[]): string {
  return `${gatewayUrl}/?skus=${skus.map(encodeURIComponent).join(',')}`;
}

/** The text of one value of a SKU's card (`data-sku` card, `data-testid` value). */
export function cellValue(p: Page, sku: string, testId: 'available' | 'version' | 'lag' | 'buy-status'): Promise<string> {
  return p.locator(`[data-sku="${sku}"] [data-testid="${testId}"]`).innerText();
}

export interface StorefrontRig {
  processor: TestProcessor;
  gateway: GatewayService;
  browser: Browser;
  page: Page;
}

/**
 * The browser tests' pipeline: a stock processor on the config's private prefix (live from the
 * end of the CDC topic), the test's stock written by `stock()` and folded into the views, an
 * in-process gateway, and Chromium with one page whose errors go to `pageErrors`.
 */
export async function startStorefrontRig(opts: {
  config: Readonly<Config>;
  kafka: Kafka;
  redis: RedisClient;
  pool: pg.Pool;
  probeSku: string;
  /** Writes the test's stock; returns its SKUs. */
  stock: () => Promise<string[]>;
  pageErrors: string[];
}): Promise<StorefrontRig> {
  const { config, pool } = opts;
  const processor = await startTestProcessor({ config, kafka: opts.kafka, redis: opts.redis, prefix: config.redis.prefix, groupId: unique('grp'), fromBeginning: false });
  await waitProcessorLive(pool, processor.views, opts.probeSku);
  const skus = await opts.stock();
  await waitUntil(async () => (await processor.views.readRows(skus)).size === skus.length, 30_000, 'the processor to apply the test stock');
  const gateway = await startGatewayService(config, createLogger({ level: 'silent' }), { port: 0, metricsDefaults: false });
  const browser = await launchChromium();
  const page = await browser.newPage();
  collectPageErrors(page, opts.pageErrors);
  return { processor, gateway, browser, page };
}

/** Stops what `startStorefrontRig` started (any part may be missing). */
export async function stopStorefrontRig(rig: Partial<StorefrontRig>): Promise<void> {
  await rig.browser?.close().catch(() => undefined);
  await rig.gateway?.stop();
  await rig.processor?.processor.stop();
}
