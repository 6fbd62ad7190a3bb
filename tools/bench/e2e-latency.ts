/**
 * Benchmark: end to end, Postgres commit -> a WebSocket client receives the change, at a steady
 * update rate (default 1,000 single-row transactions/s for 20 s).
 *
 * Child processes, on a unique REDIS_PREFIX: the stock processor (`node --import tsx
 * stream-processors/main.ts`, its own consumer group starting at the end of the CDC topic, no
 * metrics port, no reconciliation) and a gateway (`node --import tsx gateway/main.ts`). Once a
 * probe row's change is readable through the gateway (GET /v1/stock/BENCHE-PROBE answers 200),
 * the benchmark rows 'BENCHE-00001'.. at 'WH-1' are touched once and awaited until every one has a
 * view, then the client connects and subscribes to all of them (snapshot complete = ready).
 *
 * The client is another child process (tools/bench/lib/sdk-client.ts), using the typed SDK
 * (gateway/client/sdk.ts, `StockClient` with the `ws` WebSocket) exactly as the demo page uses its
 * browser build; it reports (sku, version, commitTs, receipt time) for every item of every live
 * `deltas` event. (The goal speaks of browser receipt; a Node client in its own process, same SDK,
 * same clock, is the default measurement. `--browser` uses the demo page gateway/public/index.html
 * in headless /usr/bin/chromium through playwright-core instead, hooking `window.__client`.)
 *
 * Load: UPDATE ... RETURNING version at --rate per second over --rows rows (autocommit, --connections
 * pool); the client ack time is recorded per (sku, version). Per received item:
 *   - fromCommitTs:  receipt - Postgres commit time carried in the item (commitTs);
 *   - fromClientAck: receipt - the moment this script saw COMMIT return;
 *   - legs: this script also reads `<prefix>:feed` (XREAD BLOCK), splitting the path into
 *     commit -> feed (Debezium, Kafka, processor) and feed -> client (gateway, WebSocket).
 *
 * Usage: npm run bench:e2e-latency -- [--rate 1000] [--seconds 20] [--rows 1000] [--connections 16]
 *          [--tick 25] [--browser [--reduced-motion]] [--json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfigOrExit, PROJECT_ROOT } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { nodeClient, type Receipt, type ReceiptSource } from './lib/sdk-client.ts';
import { readFeed } from './lib/feed.ts';
import { deleteGroup } from './lib/kafka-topics.ts';
import { deletePrefix } from './lib/redis-keys.ts';
import { progress, runId } from './lib/run.ts';
import { stats, type Stats } from './lib/stats.ts';
import { benchSku, seedBenchRows, steadyUpdates, updateLoadArgs } from './lib/update-load.ts';

const GOAL_P99_MS = 150;
const SKU_PREFIX = 'BENCHE-';
const skuOf = (i: number) => benchSku(SKU_PREFIX, i);
const PROBE = 'BENCHE-PROBE';

// ---------------------------------------------------------------------------------------------
// the browser client (optional)

async function browserClient(gatewayUrl: string, rows: number, reducedMotion: boolean): Promise<ReceiptSource> {
  if (!fs.existsSync(path.join(PROJECT_ROOT, 'node_modules', 'playwright-core'))) throw new Error('--browser needs node_modules/playwright-core');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  // The demo page flashes every changed cell (Element.animate) unless the user prefers reduced motion.
  const page = await browser.newPage(reducedMotion ? { reducedMotion: 'reduce' } : {});
  page.on('pageerror', (err) => progress(`  [browser] page error: ${err.message}`));
  const skus = Array.from({ length: rows }, (_, i) => skuOf(i));
  await page.goto(`${gatewayUrl}/?skus=${skus.join(',')}`);
  // Hook the page's StockClient: every live item with its receipt time, in the page's clock (= ours).
  await page.waitForFunction(() => (globalThis as unknown as { __client?: unknown }).__client !== undefined, undefined, { timeout: 30_000 });
  await page.evaluate(() => {
    const w = globalThis as unknown as {
      __client: { on(e: 'deltas', f: (items: Array<{ sku: string; version: number; commitTs: number }>) => void): void };
      __benchReceipts: Array<[string, number, number, number]>;
    };
    w.__benchReceipts = [];
    w.__client.on('deltas', (items) => {
      const now = Date.now();
      for (const it of items) w.__benchReceipts.push([it.sku, it.version, it.commitTs, now]);
    });
  });
  const ready = page
    .waitForFunction((n) => Object.keys((globalThis as unknown as { __stock: Record<string, unknown> }).__stock).length >= n, rows, { timeout: 60_000, polling: 200 })
    .then(() => undefined);
  return {
    name: 'chromium-demo-page',
    ready,
    async collect() {
      return page.evaluate(() => {
        const w = globalThis as unknown as { __benchReceipts: Array<[string, number, number, number]> };
        return w.__benchReceipts.splice(0, w.__benchReceipts.length);
      });
    },
    async stop() {
      await browser.close().catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the benchmark

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { rate, seconds, rows, connections } = updateLoadArgs(args);
  const tick = args.has('tick') ? Math.round(args.get('tick', 25)) : undefined;
  const browser = args.has('browser');
  const config = loadConfigOrExit();
  const id = runId();
  const prefix = `be2e-${id}`;
  const groupId = `bench-e2e-${id}`;
  const pool = createPgPool(config.pg.url, { max: connections, application: 'invsync-bench-e2e' });
  const redis = createRedis(config.redis);
  const feedRedis = createRedis(config.redis);
  const result: Record<string, unknown> = { benchmark: 'e2e-latency', machine: machine(), rate, seconds, rows, connections, client: browser ? `chromium-demo-page${args.has('reduced-motion') ? ' (reduced motion)' : ''}` : 'node-sdk', tickMs: tick ?? 'gateway default (25)' };
  let processor: Child | undefined;
  let gateway: Child | undefined;
  let source: ReceiptSource | undefined;
  let readingFeed = true;
  let feedLoop: Promise<void> | undefined;
  let failure: Error | undefined;
  installHardLimit(600_000, 'error: 10 minutes elapsed; killing children');

  const acks = new Map<string, number>();
  const feedAt = new Map<string, number>();
  const received = new Map<string, { at: number; commitTs: number }>();
  const highestReceived = new Map<string, number>();
  const absorb = (rs: Receipt[]) => {
    for (const [sku, version, commitTs, at] of rs) {
      const key = `${sku}/${version}`;
      if (!received.has(key)) received.set(key, { at, commitTs });
      if (version > (highestReceived.get(sku) ?? -1)) highestReceived.set(sku, version);
    }
  };

  try {
    progress(`e2e: commit -> ${browser ? 'browser' : 'SDK client'} receipt at ${rate} updates/s for ${seconds} s over ${rows} rows (prefix ${prefix})`);
    await seedBenchRows(pool, SKU_PREFIX, rows);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 0) ON CONFLICT DO NOTHING`, [PROBE]);

    processor = spawnNode('processor', 'stream-processors/main.ts', [], {
      env: {
        REDIS_PREFIX: prefix,
        PROCESSOR_GROUP_ID: groupId,
        PROCESSOR_START_FROM: 'latest',
        PROCESSOR_METRICS_PORT: '0',
        PROCESSOR_RECONCILE_INTERVAL_S: '0',
        LOG_LEVEL: 'warn',
      },
    });
    const g = await startGateway({ prefix, ...(tick === undefined ? {} : { tickMs: tick }) });
    gateway = g.child;
    progress(`  processor pid ${processor.pid}, gateway pid ${gateway.pid} on ${g.url}; waiting for the processor to apply a probe change`);

    // Live: a probe change made now is readable through the gateway.
    const liveBy = Date.now() + 120_000;
    for (;;) {
      if (!processor.alive()) throw new Error('the processor exited');
      await pool.query(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1`, [PROBE]);
      await sleep(300);
      const res = await fetch(`${g.url}/v1/stock/${PROBE}`).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > liveBy) throw new Error('the processor did not apply a probe change within 120 s');
    }
    progress('  processor is live; folding the benchmark rows');
    for (let i = 0; i < rows; i += 100) {
      const chunk = Array.from({ length: Math.min(100, rows - i) }, (_, k) => skuOf(i + k));
      await pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE location_id = 'WH-1' AND sku = ANY($1::text[])`, [chunk]);
    }
    const foldedBy = Date.now() + 60_000;
    for (;;) {
      let unknown = 0;
      for (let i = 0; i < rows; i += 100) {
        const chunk = Array.from({ length: Math.min(100, rows - i) }, (_, k) => skuOf(i + k));
        const res = await fetch(`${g.url}/v1/stock?skus=${chunk.join(',')}`);
        unknown += ((await res.json()) as { unknown: string[] }).unknown.length;
      }
      if (unknown === 0) break;
      if (Date.now() > foldedBy) throw new Error(`${unknown} benchmark rows still have no view after 60 s`);
      await sleep(500);
    }

    const last = (await feedRedis.xrevrange(redisKeys(prefix).feed, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    feedLoop = readFeed(feedRedis, redisKeys(prefix).feed, last[0]?.[0] ?? '0-0', () => readingFeed, (state, now) => {
      const k = `${state.sku}/${state.version}`;
      if (!feedAt.has(k)) feedAt.set(k, now);
    });
    if (browser) source = await browserClient(g.url, rows, args.has('reduced-motion'));
    else source = nodeClient(`${g.url.replace('http', 'ws')}/v1/stream`, SKU_PREFIX, rows).source;
    await Promise.race([
      source.ready,
      sleep(90_000).then(() => {
        throw new Error('the client did not get its snapshot within 90 s');
      }),
    ]);
    progress(`  ${source.name} subscribed to ${rows} SKUs; load starts`);
    await sleep(1000);
    absorb(await source.collect());
    received.clear();
    highestReceived.clear();

    const { total, errors, elapsed } = await steadyUpdates(pool, {
      rate,
      seconds,
      rows,
      skuOf,
      onAck: (sku, version, at) => void acks.set(`${sku}/${version}`, at),
      onReport: async (sent, total) => {
        absorb(await source!.collect());
        progress(`  ${sent}/${total} updates sent, ${acks.size} acked, ${feedAt.size} on the feed, ${received.size} received by the client`);
      },
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      absorb(await source.collect());
      const missing = [...acks.keys()].filter((k) => !received.has(k)).length;
      if (missing === 0 || Date.now() > deadline) break;
      await sleep(250);
    }

    const fromCommit: number[] = [];
    const fromAck: number[] = [];
    const commitToFeed: number[] = [];
    const feedToClient: number[] = [];
    let coalesced = 0;
    for (const [key, ack] of acks) {
      const r = received.get(key);
      if (!r) {
        const [sku, v] = key.split('/') as [string, string];
        if ((highestReceived.get(sku) ?? -1) > Number(v)) coalesced++;
        continue;
      }
      fromCommit.push(r.at - r.commitTs);
      fromAck.push(r.at - ack);
      const f = feedAt.get(key);
      if (f !== undefined) {
        commitToFeed.push(f - r.commitTs);
        feedToClient.push(r.at - f);
      }
    }
    const commitStats = stats(fromCommit);
    Object.assign(result, {
      updates: total,
      acked: acks.size,
      errors,
      matched: fromCommit.length,
      coalesced,
      achievedRate: Math.round(acks.size / elapsed),
      fromCommitTs: commitStats,
      fromClientAck: stats(fromAck),
      legs: { events: commitToFeed.length, commitToFeed: stats(commitToFeed), feedToClient: stats(feedToClient) },
      goal: { p99Ms: GOAL_P99_MS, measured: commitStats.p99, met: commitStats.p99 <= GOAL_P99_MS },
    });
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    progress('  cleaning up: client, gateway, processor, consumer group, Redis keys');
    await source?.stop().catch(() => undefined);
    readingFeed = false;
    await stopChild(gateway, 15_000);
    await stopChild(processor, 30_000);
    killAllChildren();
    await feedLoop?.catch(() => undefined);
    await deleteGroup(createKafka({ connection: config.kafka, clientId: `bench-e2e-${id}` }), groupId);
    await deletePrefix(redis, prefix).catch((err: Error) => progress(`  cleanup: could not delete ${prefix}:*: ${err.message}`));
    redis.disconnect();
    feedRedis.disconnect();
    await pool.end().catch(() => undefined);
  }

  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.fromCommitTs) {
    const r = result as {
      matched: number;
      acked: number;
      coalesced: number;
      achievedRate: number;
      fromCommitTs: Stats;
      fromClientAck: Stats;
      legs: { events: number; commitToFeed: Stats; feedToClient: Stats };
      goal: { met: boolean };
    };
    const f = (s: Stats) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`;
    process.stdout.write(
      [
        `commit -> ${String(result.client)} receipt at ${rate} updates/s for ${seconds} s: ${r.matched}/${r.acked} matched (${r.coalesced} superseded), ${r.achievedRate} updates/s achieved`,
        `  commit -> client:     ${f(r.fromCommitTs)}   goal p99 <= ${GOAL_P99_MS} ms: ${r.goal.met ? 'met' : 'MISSED'}`,
        `  client ack -> client: ${f(r.fromClientAck)}`,
        `  legs (${r.legs.events} items): commit -> feed ${f(r.legs.commitToFeed)}; feed -> client ${f(r.legs.feedToClient)}`,
      ].join('\n') + '\n',
    );
  } else process.stdout.write(`e2e latency: failed: ${failure?.message ?? 'unknown'}\n`);
  process.exit(failure || (result.matched as number) + (result.coalesced as number) !== (result.acked as number) ? 1 : 0);
}

await main();
