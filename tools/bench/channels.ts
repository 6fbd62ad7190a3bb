/**
 * Benchmark: what sales channels (docs/channels.md) cost on the latency path and on the purchase
 * gate (issue 13, "Measure"), each beside the same figure without channels, in one run.
 *
 * Set-up: 5 locations `BCH-<run>-L1..L5` and 10 sales channels `bench-<run>-01..10` over them
 * (lib/channel-layout.ts: each 2-3 locations, fences in units and percent, per-SKU fences on the first
 * 100 SKUs of one channel); --rows SKUs with 1,000 on hand at every location; a gate SKU with
 * nothing to sell.
 *
 * Latency (two pipelines on the same commits, at the same time): two stock processors as child
 * processes (tools/bench/lib/processor-child.ts), each on its own Redis prefix, consumer group and
 * private output topics, reading the same CDC topic: "plain" keeps no channel figures, "channels"
 * folds the 10 channels' figures in its apply script. A gateway child per prefix
 * (gateway/main.ts). Single-row UPDATEs of L1 at --rate per second for --seconds (round robin
 * over the SKUs). Measured per (sku, version):
 *   - commit -> view: receipt on the processor's feed `<prefix>:feed` (appended after the view and
 *     its channel fields are written) minus the Postgres commit time the event carries;
 *   - commit -> subscriber: receipt by an SDK client child (tools/bench/lib/sdk-client.ts) minus
 *     the same commit time: a plain storefront subscriber on the plain gateway, a subscriber
 *     following channel 01 (`/v1/stream?sales_channel=`) and a plain one on the channel gateway.
 * Channel 01 serves L1; every other channel on L1 fences in units or not at all, so each update moves its
 * figure and reaches its subscriber. Ratios are channels / plain per percentile; `paired` is the
 * per-event difference (same commit on both pipelines).
 *
 * Gate (after the load): sold-out purchase attempts through the channel pipeline's gateway
 * (rate limits off), by the load child (tools/bench/flash-sale-load.ts) with one storefront-backend
 * key granted two sales channels (so a body without `channel` stays on the pooled figure): the
 * plain purchase vs the same purchase naming channel 01, alternated (ABBA) over --rounds rounds
 * after one warm-up of each; the median of the per-round ratios.
 *
 * Bounded: a hard limit of 5 minutes kills every child. Loopback only. Everything it creates is
 * removed at the end, also on failure: channels, SKUs' rows, Redis prefixes, groups, topics.
 *
 * Usage: npm run bench:channels -- [--rate 1000] [--seconds 20] [--rows 1000] [--connections 16]
 *          [--rounds 5] [--attempts 50000] [--run-seconds 4] [--clients 400] [--json]
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import type { SkuState } from '../../lib/contracts/feed.ts';
import { cleanUp } from '../../tests/helpers.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, startGateway, stopChild, type Child } from './lib/children.ts';
import { busyShare, machineJiffies, procStats } from './lib/cpu.ts';
import { readFeed } from './lib/feed.ts';
import { runLoadChild, type LoadChildOptions } from './lib/load-child.ts';
import { progress, runId } from './lib/run.ts';
import { channelLayout, LAYOUT_LOCATIONS, writeChannelConfig } from './lib/channel-layout.ts';
import { median, paired, ratio, Receipts, type PathLatency } from './lib/receipts.ts';
import { nodeClient, type ReceiptSource } from './lib/sdk-client.ts';
import type { Stats } from './lib/stats.ts';
import { benchSku, seedBenchRows, steadyUpdates, updateLoadArgs } from './lib/update-load.ts';

// ---------------------------------------------------------------------------------------------
// children

/** What a processor child reports of its work so far. */
interface ProcessorMetrics {
  batches: number;
  batchSeconds: number;
  events: number;
}

function spawnProcessor(name: string, prefix: string, group: string, probe: string, channels: boolean): { child: Child; ready: Promise<void>; metrics(): Promise<ProcessorMetrics> } {
  let resolve!: () => void;
  const ready = new Promise<void>((r) => (resolve = r));
  const waiting: Array<(m: ProcessorMetrics) => void> = [];
  const child = spawnNode(name, 'tools/bench/lib/processor-child.ts', ['--prefix', prefix, '--group', group, '--probe', probe, ...(channels ? ['--channels'] : [])], {
    stdin: true,
    onStdoutLine: (line) => {
      if (line.includes('"ready"')) resolve();
      else if (line.includes('"metrics"')) waiting.shift()?.(JSON.parse(line) as ProcessorMetrics);
      else progress(`  [${name}] ${line}`);
    },
  });
  return {
    child,
    metrics: () =>
      new Promise<ProcessorMetrics>((r, reject) => {
        waiting.push(r);
        child.proc.stdin?.write('metrics\n');
        setTimeout(() => reject(new Error(`${name} did not report its metrics`)), 10_000).unref();
      }),
    ready: Promise.race([
      ready,
      child.exited.then((c) => {
        throw new Error(`${name} exited (${String(c)}) before it was live`);
      }),
    ]),
  };
}

/** Stops a processor child: stdin closed (it stops itself, deleting its topics and group), SIGTERM and SIGKILL as fallbacks. */
async function stopProcessor(child: Child | undefined): Promise<void> {
  if (!child?.alive()) return;
  child.proc.stdin?.end();
  const done = await Promise.race([child.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!done) await stopChild(child, 5000);
}

// ---------------------------------------------------------------------------------------------
// the benchmark

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { rate, seconds, rows, connections } = updateLoadArgs(args);
  const rounds = Math.round(args.get('rounds', 5));
  // Each gate run stops at --attempts or after --run-seconds, whichever comes first.
  const gateLoad: LoadChildOptions = { attempts: Math.round(args.get('attempts', 50_000)), clients: Math.round(args.get('clients', 400)), customers: 100_000, maxSeconds: args.get('run-seconds', 4) };
  const config = loadConfigOrExit();
  const id = runId();
  const skuPrefix = `BCH-${id}-`;
  const locations = Array.from({ length: LAYOUT_LOCATIONS }, (_, i) => `${skuPrefix}L${i + 1}`);
  const layout = channelLayout(`bench-${id}-`, locations, skuPrefix, rows);
  const channelIds = [...layout.channels.keys()];
  const followed = channelIds[0]!;
  const gateSku = `${skuPrefix}GATE`;
  const pipelines = {
    plain: { prefix: `bchp-${id}`, group: `bench-channels-${id}-plain`, probe: `${skuPrefix}PROBE-P` },
    channels: { prefix: `bchc-${id}`, group: `bench-channels-${id}-chan`, probe: `${skuPrefix}PROBE-C` },
  };
  const shopKey = randomBytes(16).toString('hex');
  // One credential for both gate modes: it may sell on two channels, so a body without `channel` is pooled.
  const gatewayEnv = {
    PURCHASE_RATE_CUSTOMER_PER_SEC: '0',
    PURCHASE_RATE_ADDRESS_PER_SEC: '0',
    PURCHASE_MAX_PER_CUSTOMER: '1000',
    GATEWAY_API_KEYS: `bench-shop:${shopKey}:purchase:act-for+sales:${channelIds[0]}+sales:${channelIds[1]}`,
  };
  const skuOf = (i: number) => benchSku(skuPrefix, i);
  const pool = createPgPool(config.pg.url, { max: connections, application: 'invsync-bench-channels' });
  const feedRedis = { plain: createRedis(config.redis), channels: createRedis(config.redis) };
  const result: Record<string, unknown> = {
    benchmark: 'channels',
    machine: machine(),
    rate,
    seconds,
    rows,
    channels: channelIds.length,
    locations: LAYOUT_LOCATIONS,
    followedChannel: followed,
  };
  const children: { processors: Child[]; gateways: Child[]; sources: ReceiptSource[] } = { processors: [], gateways: [], sources: [] };
  let readingFeeds = true;
  const feedLoops: Array<Promise<void>> = [];
  let failure: Error | undefined;
  installHardLimit(300_000, 'error: 5 minutes elapsed; killing children');

  try {
    progress(`channels: ${channelIds.length} channels over ${LAYOUT_LOCATIONS} locations, ${rows} SKUs; ${rate} updates/s for ${seconds} s; then ${rounds} gate rounds (run ${id})`);
    await writeChannelConfig(pool, layout);
    await seedBenchRows(pool, skuPrefix, rows, locations);
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1, l, 0 FROM unnest($2::text[]) l`, [gateSku, locations]);

    // Two processors on the same CDC topic: without and with channel figures. The schemas are
    // registered here first: two processors registering them at once on a fresh registry race.
    await registerStockSchemas(config.registry.url);
    const plainProc = spawnProcessor('processor-plain', pipelines.plain.prefix, pipelines.plain.group, pipelines.plain.probe, false);
    const chanProc = spawnProcessor('processor-channels', pipelines.channels.prefix, pipelines.channels.group, pipelines.channels.probe, true);
    children.processors.push(plainProc.child, chanProc.child);
    const [g0, g1] = await Promise.all([startGateway({ prefix: pipelines.plain.prefix, env: gatewayEnv }), startGateway({ prefix: pipelines.channels.prefix, env: gatewayEnv })]);
    children.gateways.push(g0.child, g1.child);
    await Promise.all([plainProc.ready, chanProc.ready]);
    progress(`  processors live (pids ${plainProc.child.pid}, ${chanProc.child.pid}); gateways ${g0.url} (plain), ${g1.url} (channels); folding the rows`);

    // Every row folded by both pipelines (the channel one with its figures) before anyone subscribes.
    const all = [...Array.from({ length: rows }, (_, i) => skuOf(i)), gateSku];
    const foldedBy = Date.now() + 60_000;
    let unknown = -1;
    for (let attempt = 0; unknown !== 0; attempt++) {
      if (attempt > 0 && Date.now() > foldedBy) throw new Error(`${unknown} SKUs still have no view after 60 s`);
      if (attempt % 10 === 0) await pool.query(`UPDATE stock_levels SET on_hand = on_hand WHERE location_id = $1 AND sku = ANY($2::text[])`, [locations[0], all]);
      await sleep(500);
      unknown = 0;
      for (const g of [g0, g1]) {
        for (let i = 0; i < all.length; i += 100) {
          const res = await fetch(`${g.url}/v1/stock?skus=${all.slice(i, i + 100).map(encodeURIComponent).join(',')}`);
          unknown += ((await res.json()) as { unknown: string[] }).unknown.length;
        }
      }
    }

    // Feed readers (commit -> view) from each feed's current end.
    const viewReceipts = { plain: new Receipts(), channels: new Receipts() };
    const figuresPerEntry = { min: Number.POSITIVE_INFINITY, max: 0 };
    for (const name of ['plain', 'channels'] as const) {
      const key = redisKeys(pipelines[name].prefix).feed;
      const last = (await feedRedis[name].xrevrange(key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      feedLoops.push(
        readFeed(feedRedis[name], key, last[0]?.[0] ?? '0-0', () => readingFeeds, (state: SkuState, now) => {
          if (!state.sku.startsWith(skuPrefix)) return;
          viewReceipts[name].add(state.sku, state.version, state.commitTs, now);
          if (name === 'channels') {
            const n = Object.keys(state.channels ?? {}).length;
            figuresPerEntry.min = Math.min(figuresPerEntry.min, n);
            figuresPerEntry.max = Math.max(figuresPerEntry.max, n);
          }
        }),
      );
    }

    // Subscribers (commit -> client).
    const ws = (url: string) => `${url.replace('http', 'ws')}/v1/stream`;
    const subs = {
      plain: nodeClient(ws(g0.url), skuPrefix, rows, 'client-plain'),
      channel: nodeClient(`${ws(g1.url)}?sales_channel=${followed}`, skuPrefix, rows, 'client-channel'),
      plainOnChannelGateway: nodeClient(ws(g1.url), skuPrefix, rows, 'client-plain-g1'),
    };
    children.sources.push(...Object.values(subs).map((s) => s.source));
    await Promise.race([
      Promise.all(Object.values(subs).map((s) => s.source.ready)),
      sleep(60_000).then(() => {
        throw new Error('the subscribers did not get their snapshots within 60 s');
      }),
    ]);
    const subReceipts = { plain: new Receipts(), channel: new Receipts(), plainOnChannelGateway: new Receipts() };
    const collect = async () => {
      for (const k of Object.keys(subs) as Array<keyof typeof subs>) subReceipts[k].absorb(await subs[k].source.collect());
    };
    await sleep(1000);
    await collect();
    for (const r of [...Object.values(subReceipts), ...Object.values(viewReceipts)]) r.clear();
    progress(`  3 subscribers have their snapshots; load starts`);

    const acks = new Set<string>();
    const busy = { processorPlain: plainProc.child, processorChannels: chanProc.child, gatewayPlain: g0.child, gatewayChannels: g1.child };
    const m0 = await Promise.all([plainProc.metrics(), chanProc.metrics()]);
    const cpu0 = Object.fromEntries(Object.entries(busy).map(([k, c]) => [k, procStats(c.pid)?.cpuS ?? Number.NaN]));
    const j0 = machineJiffies();
    const load = await steadyUpdates(pool, {
      rate,
      seconds,
      rows,
      skuOf,
      location: locations[0]!,
      onAck: (sku, version) => void acks.add(`${sku}/${version}`),
      onReport: async (sent, total) => {
        await collect();
        progress(`  ${sent}/${total} sent, ${acks.size} acked; views ${viewReceipts.plain.at.size} plain, ${viewReceipts.channels.at.size} channels; subscribers ${subReceipts.plain.at.size} / ${subReceipts.channel.at.size} / ${subReceipts.plainOnChannelGateway.at.size}`);
      },
    });
    const j1 = machineJiffies();
    /** Cores each server child used during the load (CPU seconds / wall seconds). */
    const cores = Object.fromEntries(Object.entries(busy).map(([k, c]) => [k, +(((procStats(c.pid)?.cpuS ?? Number.NaN) - cpu0[k]!) / load.elapsed).toFixed(2)]));
    const drainBy = Date.now() + 30_000;
    const settled = (r: Receipts) => [...acks].every((k) => r.settled(k));
    while (Date.now() < drainBy) {
      await collect();
      if ([...Object.values(viewReceipts), ...Object.values(subReceipts)].every(settled)) break;
      await sleep(250);
    }
    readingFeeds = false;
    const m1 = await Promise.all([plainProc.metrics(), chanProc.metrics()]);
    /** The processors' batches from the start of the load to the end of the drain: how many, their mean apply time, events per batch. */
    const batches = (a: ProcessorMetrics, b: ProcessorMetrics) => {
      const n = b.batches - a.batches;
      return { batches: n, meanMs: +(((b.batchSeconds - a.batchSeconds) * 1000) / Math.max(1, n)).toFixed(1), eventsPerBatch: +((b.events - a.events) / Math.max(1, n)).toFixed(1) };
    };

    const view = { plain: viewReceipts.plain.of(acks), channels: viewReceipts.channels.of(acks) };
    const sub = { plain: subReceipts.plain.of(acks), channel: subReceipts.channel.of(acks), plainOnChannelGateway: subReceipts.plainOnChannelGateway.of(acks) };
    const summary = (x: PathLatency) => ({ matched: x.matched, superseded: x.superseded, missing: x.missing, ...x.stats });
    result.latency = {
      updates: load.total,
      acked: acks.size,
      errors: load.errors,
      ...(load.errors ? { firstError: (load.firstError as Error).message } : {}),
      achievedRate: Math.round(acks.size / load.elapsed),
      /** Whether the machine kept up with --rate (90 % of it acknowledged): the latencies are at the achieved rate otherwise. */
      rateMet: acks.size >= 0.9 * load.total,
      machineBusy: busyShare(j0, j1),
      cores,
      processorBatches: { plain: batches(m0[0], m1[0]), channels: batches(m0[1], m1[1]) },
      commitToView: {
        plain: summary(view.plain),
        channels: summary(view.channels),
        ratio: ratio(view.channels.stats, view.plain.stats),
        paired: paired(view.channels.values, view.plain.values),
        /** Channel figures carried by each feed entry of the channel pipeline (every one of the channels when they are folded). */
        figuresPerEntry: { min: Number.isFinite(figuresPerEntry.min) ? figuresPerEntry.min : null, max: figuresPerEntry.max },
      },
      commitToSubscriber: {
        plain: summary(sub.plain),
        channel: summary(sub.channel),
        plainOnChannelGateway: summary(sub.plainOnChannelGateway),
        ratio: ratio(sub.channel.stats, sub.plain.stats),
        paired: paired(sub.channel.values, sub.plain.values),
      },
    };
    for (const s of children.sources) await s.stop();
    children.sources.length = 0;
    await stopProcessor(plainProc.child);
    await stopChild(g0.child, 10_000);

    // Gate: sold-out attempts through the channel pipeline's gateway, plain vs channel-scoped, alternated.
    const readyBy = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${g1.url}/v1/stock/${encodeURIComponent(gateSku)}?channel=${followed}`);
      if (res.status === 200 && ((await res.json()) as { available: number }).available === 0) break;
      if (Date.now() > readyBy) throw new Error(`${gateSku} has no channel figure through the gateway after 30 s`);
      await sleep(250);
    }
    const run = (channel: string | undefined, attempts = gateLoad.attempts) => runLoadChild(g1.port, gateSku, { ...gateLoad, attempts }, { apiKey: shopKey, ...(channel ? { channel } : {}) });
    for (const channel of [undefined, followed]) {
      const w = await run(channel, Math.max(1000, Math.round(gateLoad.attempts / 4)));
      progress(`  gate warm-up (${channel ? 'channel' : 'plain'}): ${w.attemptsPerS}/s, ${JSON.stringify(w.counts)}`);
    }
    const perRound: Array<{ plain: number; channel: number; ratio: number; order: string }> = [];
    let refusedOtherwise = 0;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['plain', 'channel'] as const) : (['channel', 'plain'] as const);
      const got: Record<string, number> = {};
      for (const mode of order) {
        const s = await run(mode === 'channel' ? followed : undefined);
        refusedOtherwise += s.completed - s.soldOut;
        got[mode] = s.attemptsPerS;
        progress(`  gate round ${r + 1} ${mode}: ${s.attemptsPerS} attempts/s (${s.soldOut}/${s.completed} sold_out, p99 ${s.latencyMs.all.p99} ms)`);
      }
      perRound.push({ plain: got.plain!, channel: got.channel!, ratio: +(got.channel! / got.plain!).toFixed(3), order: order.join(',') });
    }
    result.gate = {
      sku: gateSku,
      attemptsPerRun: gateLoad.attempts,
      clients: gateLoad.clients,
      rounds: perRound,
      /** Answers other than 409 sold_out in the measured rounds (must be 0: every attempt is a gate refusal). */
      notSoldOut: refusedOtherwise,
      medianAttemptsPerS: { plain: median(perRound.map((x) => x.plain)), channel: median(perRound.map((x) => x.channel)) },
      medianRatio: median(perRound.map((x) => x.ratio)),
    };
    if (refusedOtherwise > 0) throw new Error(`${refusedOtherwise} gate attempts were answered otherwise than 409 sold_out`);
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    progress('  cleaning up: clients, gateways, processors, channels, rows, Redis prefixes');
    readingFeeds = false;
    for (const s of children.sources) await s.stop().catch(() => undefined);
    for (const g of children.gateways) await stopChild(g, 10_000);
    await Promise.all(children.processors.map((p) => stopProcessor(p)));
    killAllChildren();
    await Promise.all(feedLoops.map((l) => l.catch(() => undefined)));
    await pool.query('DELETE FROM sales_channels WHERE channel_id = ANY ($1)', [channelIds]).catch((err: Error) => progress(`  cleanup: could not delete the channels: ${err.message}`));
    await cleanUp(config, {
      redisPrefixes: [pipelines.plain.prefix, pipelines.channels.prefix],
      skuPrefixes: [skuPrefix],
      groups: [pipelines.plain.group, pipelines.channels.group],
    }).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    feedRedis.plain.disconnect();
    feedRedis.channels.disconnect();
    await pool.end().catch(() => undefined);
  }

  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (result.gate) process.stdout.write(report(result));
  else process.stdout.write(`channels benchmark: failed: ${failure?.message ?? 'unknown'}\n`);
  process.exit(failure ? 1 : 0);
}

function report(result: Record<string, unknown>): string {
  type S = Stats & { matched: number; superseded: number; missing: number };
  type R = { p50: number; p95: number; p99: number };
  const l = result.latency as {
    acked: number;
    achievedRate: number;
    rateMet: boolean;
    machineBusy: number | null;
    cores: Record<string, number>;
    processorBatches: Record<string, { batches: number; meanMs: number; eventsPerBatch: number }>;
    commitToView: { plain: S; channels: S; ratio: R; paired: Stats & { events: number }; figuresPerEntry: { min: number | null; max: number } };
    commitToSubscriber: { plain: S; channel: S; plainOnChannelGateway: S; ratio: R; paired: Stats & { events: number } };
  };
  const g = result.gate as { rounds: Array<{ plain: number; channel: number; ratio: number }>; medianAttemptsPerS: { plain: number; channel: number }; medianRatio: number };
  const f = (s: S) => `p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms, max ${s.max} ms (${s.matched} events, ${s.superseded} superseded, ${s.missing} missing)`;
  const r = (x: R) => `${x.p50} / ${x.p95} / ${x.p99}`;
  return (
    [
      `sales channels at ${String(result.rate)} changes/s for ${String(result.seconds)} s, ${String(result.channels)} channels over ${String(result.locations)} locations: ${l.acked} updates, ${l.achievedRate}/s achieved, machine ${l.machineBusy === null ? '?' : `${Math.round(l.machineBusy * 100)}%`} busy`,
      ...(l.rateMet ? [] : [`  RATE NOT MET: ${l.acked} of ${String(result.rate)}/s x ${String(result.seconds)} s updates acknowledged; the figures below are at ${l.achievedRate}/s`]),
      `  commit -> view, no channels:        ${f(l.commitToView.plain)}`,
      `  commit -> view, ${String(result.channels)} channels:        ${f(l.commitToView.channels)}`,
      `    ratio p50/p95/p99 ${r(l.commitToView.ratio)}; per event (channels - plain): p50 ${l.commitToView.paired.p50} ms, p95 ${l.commitToView.paired.p95} ms, p99 ${l.commitToView.paired.p99} ms; figures per entry ${String(l.commitToView.figuresPerEntry.min)}..${l.commitToView.figuresPerEntry.max}`,
      `  commit -> storefront subscriber:    ${f(l.commitToSubscriber.plain)}`,
      `  commit -> channel subscriber:       ${f(l.commitToSubscriber.channel)}`,
      `  commit -> storefront on channel gw: ${f(l.commitToSubscriber.plainOnChannelGateway)}`,
      `    ratio p50/p95/p99 ${r(l.commitToSubscriber.ratio)}; per event: p50 ${l.commitToSubscriber.paired.p50} ms, p95 ${l.commitToSubscriber.paired.p95} ms, p99 ${l.commitToSubscriber.paired.p99} ms`,
      `  gate, sold-out attempts/s (plain / channel / ratio): ${g.rounds.map((x) => `${x.plain} / ${x.channel} / ${x.ratio}`).join('; ')}`,
      `    median ${g.medianAttemptsPerS.plain} / ${g.medianAttemptsPerS.channel}, median ratio ${g.medianRatio}`,
      `  cores during the load: ${Object.entries(l.cores).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  processor batches (plain / channels): ${Object.values(l.processorBatches).map((b) => `${b.batches} of ${b.eventsPerBatch} events, mean ${b.meanMs} ms`).join(' / ')}`,
    ].join('\n') + '\n'
  );
}

await main();
