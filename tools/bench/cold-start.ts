/**
 * Benchmark: commit -> client latency in the first minute after a start, beside the same
 * measurement once warm, in one run (issue 16, part 1).
 *
 * What it does, with the platform's own entry points and configuration (not children on a private
 * prefix): the benchmark rows 'BENCHC-00001'.. at 'WH-1' are made to exist, then
 *   --cold      (the default) the whole stack is stopped (`npm run stack -- down`) and the platform
 *               started from a stopped stack (`npm start`: stack up, migrations, seed, processor,
 *               gateway, connectors) — what a host restart or a full deploy gives;
 *   --services  only the Node services are (re)started (`npm start` with the stack already up).
 * As soon as the gateway's /readyz answers 200, a storefront WebSocket client (the typed SDK, in
 * its own process) subscribes to the rows, and each row is updated once by plain SQL at --rate per
 * second (the "cold" pass); then, --settle seconds later, --warm-passes more passes of the same load, 2 s apart. For
 * every pass: commit -> client (Postgres commit time carried in each item -> receipt), p50 / p99.
 *
 * Goals: the cold pass's p99 <= 150 ms, and <= 1.5x the warm p99 (the median of the warm passes'
 * p99s) measured in the same run. The started platform is stopped at the end (the stack keeps
 * running, as after Ctrl-C on `npm start`). Nothing else may be serving on the gateway's port.
 *
 * Usage: npm run bench:cold-start -- [--cold | --services] [--rows 1000] [--rate 400] [--warm-passes 3] [--settle 20] [--idle 0] [--json]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfigOrExit, PROJECT_ROOT, type Config } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import { TOPICS } from '../../lib/topics.ts';
import fs from 'node:fs';
import { machine, parseArgs } from './args.ts';
import { busyShare, machineJiffies, procSched, procStats } from './lib/cpu.ts';
import { installHardLimit, killAllChildren, spawnNode, stopChild, type Child } from './lib/children.ts';
import { readFeed } from './lib/feed.ts';
import { consumeFromEnd, deleteGroup } from './lib/kafka-topics.ts';
import { progress, runId } from './lib/run.ts';
import { nodeClient, type Receipt, type ReceiptSource } from './lib/sdk-client.ts';
import { stats, type Stats } from './lib/stats.ts';
import { benchSku, seedBenchRows, steadyUpdates } from './lib/update-load.ts';

const GOAL_P99_MS = 150;
const GOAL_RATIO = 1.5;
const SKU_PREFIX = 'BENCHC-';
const skuOf = (i: number) => benchSku(SKU_PREFIX, i);

/** Runs `npm run stack -- <command>` (tsx tools/stack/cli.ts) to completion, its output as progress. */
async function stack(command: 'up' | 'down'): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'tools', 'stack', 'cli.ts'), command], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => progress(`  [stack ${command}] ${d.toString().trimEnd()}`));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`npm run stack -- ${command} exited with ${code}`);
}

async function portAnswers(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(1000) }).then(
    () => true,
    () => false,
  );
}

/** Polls `url` until it answers 200; returns the time it did. */
async function waitReady(url: string, child: Child, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.alive()) throw new Error('npm start exited before the gateway was ready');
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    if (res?.status === 200) return performance.now();
    await sleep(50);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
}

interface Pass {
  pass: number;
  kind: 'cold' | 'warm';
  startedAfterReadyMs: number;
  updates: number;
  received: number;
  fromCommitTs: Stats;
  /** CPU milliseconds each platform process spent during the pass, per update. */
  cpuMsPerUpdate: Record<string, number>;
  /**
   * Milliseconds each process's threads spent runnable but waiting for a core during the pass, per
   * update (Linux schedstat; null where unavailable): queueing for CPU, not work. On a saturated
   * machine this is where a leg's time goes (docs/benchmarks.md, "Idle polling and batch gathering").
   */
  runQueueMsPerUpdate: Record<string, number | null>;
  /** Share of the machine's cores busy during the pass. */
  machineBusy: number | null;
  /** The legs, per item seen on each: commit -> CDC record on Kafka (Debezium), -> feed entry (processor), -> client (gateway). */
  legs: { commitToCdc: Stats; cdcToFeed: Stats; feedToClient: Stats };
}

/** The pid of the process whose command line holds every one of `parts` (0 when none). */
function pidOf(...parts: string[]): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (parts.every((p) => cmd.includes(p))) return Number(d);
    } catch {
      // gone
    }
  }
  return 0;
}

/** Run-queue wait so far (ms, all threads) of each named process. */
function waitOf(pids: Record<string, number>): Record<string, number | undefined> {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procSched(pid)?.waitMs]));
}

/** CPU seconds so far of each named process. */
function cpuOf(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procStats(pid)?.cpuS ?? Number.NaN]));
}

/** When each (sku/version) was seen on the CDC topic and on the feed, and the commit time of each receipt. */
interface Seen {
  cdc: Map<string, number>;
  feed: Map<string, number>;
}

/** One pass: every row updated once at `rate`/s; commit -> client per item. */
async function pass(pool: ReturnType<typeof createPgPool>, source: ReceiptSource, seen: Seen, opts: { rows: number; rate: number }): Promise<{ updates: number; received: number; fromCommit: number[]; legs: Pass['legs'] }> {
  const acks = new Map<string, number>();
  const received = new Map<string, { at: number; commitTs: number }>();
  const absorb = (rs: Receipt[]) => {
    for (const [sku, version, commitTs, at] of rs) {
      const key = `${sku}/${version}`;
      if (!received.has(key)) received.set(key, { at, commitTs });
    }
  };
  absorb(await source.collect());
  received.clear();
  await steadyUpdates(pool, { rate: opts.rate, seconds: opts.rows / opts.rate, rows: opts.rows, skuOf, onAck: (sku, version, at) => void acks.set(`${sku}/${version}`, at) });
  const deadline = Date.now() + 30_000;
  for (;;) {
    absorb(await source.collect());
    if ([...acks.keys()].every((k) => received.has(k)) || Date.now() > deadline) break;
    await sleep(100);
  }
  const fromCommit: number[] = [];
  const legs = { commitToCdc: [] as number[], cdcToFeed: [] as number[], feedToClient: [] as number[] };
  for (const k of acks.keys()) {
    const r = received.get(k);
    if (!r) continue;
    fromCommit.push(r.at - r.commitTs);
    const cdc = seen.cdc.get(k);
    const feed = seen.feed.get(k);
    if (cdc !== undefined) legs.commitToCdc.push(cdc - r.commitTs);
    if (cdc !== undefined && feed !== undefined) legs.cdcToFeed.push(feed - cdc);
    if (feed !== undefined) legs.feedToClient.push(r.at - feed);
  }
  return { updates: acks.size, received: fromCommit.length, fromCommit, legs: { commitToCdc: stats(legs.commitToCdc), cdcToFeed: stats(legs.cdcToFeed), feedToClient: stats(legs.feedToClient) } };
}

/** Waits until the processor's group has consumed the CDC topic up to its end (at most 5 minutes). */
async function drainBacklog(kafka: ReturnType<typeof createKafka>, groupId: string): Promise<{ atStart: number; seconds: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const lag = async () => {
      const ends = new Map((await admin.fetchTopicOffsets(TOPICS.cdcStockLevels)).map((p) => [p.partition, Number(p.high)]));
      const [committed] = await admin.fetchOffsets({ groupId, topics: [TOPICS.cdcStockLevels] });
      return (committed?.partitions ?? []).reduce((n, p) => n + Math.max(0, (ends.get(p.partition) ?? 0) - Math.max(0, Number(p.offset))), 0);
    };
    const t0 = performance.now();
    const atStart = await lag();
    let last = atStart;
    while (last > 50 && performance.now() - t0 < 300_000) {
      await sleep(1000);
      last = await lag();
    }
    return { atStart, seconds: atStart > 50 ? Number(((performance.now() - t0) / 1000).toFixed(1)) : 0 };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const mode = args.has('services') ? 'services' : 'cold';
  const rows = Math.round(args.get('rows', 1000));
  const rate = args.get('rate', 400);
  const warmPasses = Math.max(1, Math.round(args.get('warm-passes', 3)));
  let config: Config = loadConfigOrExit();
  const gatewayUrl = `http://127.0.0.1:${config.gateway.port}`;
  const result: Record<string, unknown> = { benchmark: 'cold-start', mode, machine: machine(), rows, rate, warmPasses };
  let platform: Child | undefined;
  let source: ReceiptSource | undefined;
  let failure: Error | undefined;
  const id = runId();
  const groupId = `bench-cold-${id}`;
  let feedRedis: ReturnType<typeof createRedis> | undefined;
  let feedLoop: Promise<void> | undefined;
  let readingFeed = true;
  let kafka: ReturnType<typeof createKafka> | undefined;
  let cdcConsumer: Awaited<ReturnType<typeof consumeFromEnd>> | undefined;
  installHardLimit(900_000, 'error: 15 minutes elapsed; killing children');

  try {
    if (await portAnswers(`${gatewayUrl}/healthz`)) throw new Error(`something already serves ${gatewayUrl}: stop \`npm start\` (or that gateway) first`);
    progress(`cold-start: ${mode === 'cold' ? 'stack stopped, then `npm start`' : '`npm start` on a running stack'}; ${rows} rows at ${rate}/s per pass, 1 cold + ${warmPasses} warm passes`);
    await stack('up');
    config = loadConfigOrExit();
    {
      const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-bench-cold' });
      await seedBenchRows(pool, SKU_PREFIX, rows).finally(() => pool.end());
    }
    if (mode === 'cold') {
      progress('  stopping the whole stack');
      await stack('down');
    }

    const t0 = performance.now();
    platform = spawnNode('npm-start', 'tools/cli/start.ts', [], {
      nodeFlags: ['--max-semi-space-size=32'],
      onStdoutLine: (line) => {
        if (/^(invsync|platform up|supervisor|  \[|  connect )/.test(line)) progress(`  [npm start] ${line}`);
      },
    });
    const readyAt = await waitReady(`${gatewayUrl}/readyz`, platform, 300_000);
    result.readyAfterS = Number(((readyAt - t0) / 1000).toFixed(1));
    progress(`  gateway ready ${result.readyAfterS} s after \`npm start\`; subscribing`);

    // A backlog on the CDC topic (changes made while no processor ran, e.g. by the tests sharing
    // this stack) is not a cold start: it is reported, and drained before the first pass.
    kafka = createKafka({ connection: config.kafka, clientId: `bench-cold-${id}` });
    const backlog = await drainBacklog(kafka, config.processor.groupId);
    Object.assign(result, { backlogAtReady: backlog.atStart, backlogDrainedS: backlog.seconds });
    if (backlog.atStart > 0) progress(`  processor backlog at ready: ${backlog.atStart} changes, drained in ${backlog.seconds} s`);

    const pool = createPgPool(config.pg.url, { max: 16, application: 'invsync-bench-cold' });
    const seen: Seen = { cdc: new Map(), feed: new Map() };
    feedRedis = createRedis(config.redis);
    const feedKey = redisKeys(config.redis.prefix).feed;
    const last = (await feedRedis.xrevrange(feedKey, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    feedLoop = readFeed(feedRedis, feedKey, last[0]?.[0] ?? '0-0', () => readingFeed, (state, now) => {
      const k = `${state.sku}/${state.version}`;
      if (!seen.feed.has(k)) seen.feed.set(k, now);
    });
    cdcConsumer = await consumeFromEnd(kafka, TOPICS.cdcStockLevels, groupId, async ({ message }) => {
      if (!message.value) return;
      const after = (JSON.parse(message.value.toString()) as { after?: { sku?: string; version?: number | string } | null }).after;
      if (after?.sku?.startsWith(SKU_PREFIX)) {
        const k = `${after.sku}/${String(after.version)}`;
        if (!seen.cdc.has(k)) seen.cdc.set(k, Number(message.timestamp));
      }
    });
    try {
      source = nodeClient(`${gatewayUrl.replace('http', 'ws')}/v1/stream`, SKU_PREFIX, rows).source;
      await Promise.race([
        source.ready,
        sleep(60_000).then(() => {
          throw new Error('the client did not get its snapshot within 60 s');
        }),
      ]);
      // --idle S: wait S seconds before the first pass (to tell warm-up by time from warm-up by work).
      if (args.has('idle')) await sleep(args.get('idle', 0) * 1000);
      const pids = {
        processor: pidOf(path.join(PROJECT_ROOT, 'stream-processors', 'main.ts')),
        gateway: pidOf(path.join(PROJECT_ROOT, 'gateway', 'main.ts')),
        connect: pidOf('ConnectDistributed', config.stack.dir),
      };
      result.pids = pids;
      const passes: Pass[] = [];
      for (let i = 0; i <= warmPasses; i++) {
        // The warm passes start --settle seconds (default 20) after the cold one, so they measure
        // the platform as it runs once the start is over, not the start's tail.
        if (i === 1) await sleep(args.get('settle', 20) * 1000);
        else if (i > 1) await sleep(2000);
        const startedAfterReadyMs = Math.round(performance.now() - readyAt);
        const cpu0 = cpuOf(pids);
        const wait0 = waitOf(pids);
        const j0 = machineJiffies();
        const p = await pass(pool, source, seen, { rows, rate });
        const machineBusy = busyShare(j0, machineJiffies());
        const wait1 = waitOf(pids);
        const cpu1 = cpuOf(pids);
        const perUpdate = (ms: number) => Number((ms / Math.max(1, p.updates)).toFixed(3));
        const cpuMsPerUpdate = Object.fromEntries(Object.keys(pids).map((k) => [k, perUpdate((cpu1[k]! - cpu0[k]!) * 1000)]));
        const runQueueMsPerUpdate = Object.fromEntries(
          Object.keys(pids).map((k) => [k, wait0[k] === undefined || wait1[k] === undefined ? null : perUpdate(wait1[k]! - wait0[k]!)]),
        );
        const s = stats(p.fromCommit);
        passes.push({ pass: i, kind: i === 0 ? 'cold' : 'warm', startedAfterReadyMs, updates: p.updates, received: p.received, fromCommitTs: s, cpuMsPerUpdate, runQueueMsPerUpdate, machineBusy, legs: p.legs });
        const leg = (x: Stats) => `${x.p50}/${x.p99}`;
        progress(
          `  pass ${i} (${i === 0 ? 'cold' : 'warm'}, started ${(startedAfterReadyMs / 1000).toFixed(1)} s after ready): ${p.received}/${p.updates} received, commit -> client p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms` +
            ` (p50/p99 legs: commit -> CDC topic ${leg(p.legs.commitToCdc)}, -> feed ${leg(p.legs.cdcToFeed)}, -> client ${leg(p.legs.feedToClient)};` +
            ` CPU ms/update ${Object.entries(cpuMsPerUpdate).map(([k, v]) => `${k} ${v}`).join(', ')};` +
            ` run-queue wait ms/update ${Object.entries(runQueueMsPerUpdate).map(([k, v]) => `${k} ${v ?? '?'}`).join(', ')}; machine ${machineBusy === null ? '?' : `${Math.round(machineBusy * 100)}%`} busy)`,
        );
      }
      const cold = passes[0]!;
      const warmP99s = passes.slice(1).map((p) => p.fromCommitTs.p99);
      const warmP99 = stats([...warmP99s]).p50;
      const ratio = Number((cold.fromCommitTs.p99 / warmP99).toFixed(2));
      Object.assign(result, {
        passes,
        cold: { p50: cold.fromCommitTs.p50, p99: cold.fromCommitTs.p99 },
        warmP99,
        ratio,
        goals: {
          coldP99: { goalMs: GOAL_P99_MS, measured: cold.fromCommitTs.p99, met: cold.fromCommitTs.p99 <= GOAL_P99_MS },
          ratio: { goal: GOAL_RATIO, measured: ratio, met: ratio <= GOAL_RATIO },
        },
        lost: passes.reduce((n, p) => n + p.updates - p.received, 0),
      });
    } finally {
      await pool.end().catch(() => undefined);
    }
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    progress('  stopping the client and the platform (the stack keeps running)');
    await source?.stop().catch(() => undefined);
    readingFeed = false;
    await feedLoop?.catch(() => undefined);
    feedRedis?.disconnect();
    await cdcConsumer?.disconnect().catch(() => undefined);
    if (kafka) await deleteGroup(kafka, groupId);
    await stopChild(platform, 60_000);
    killAllChildren();
  }

  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (!failure) {
    const g = result.goals as { coldP99: { met: boolean }; ratio: { met: boolean } };
    const c = result.cold as { p50: number; p99: number };
    process.stdout.write(
      `${mode} start: ready after ${String(result.readyAfterS)} s; first pass commit -> client p50 ${c.p50} ms, p99 ${c.p99} ms ` +
        `(goal <= ${GOAL_P99_MS}: ${g.coldP99.met ? 'met' : 'MISSED'}); warm p99 ${String(result.warmP99)} ms; ratio ${String(result.ratio)} (goal <= ${GOAL_RATIO}: ${g.ratio.met ? 'met' : 'MISSED'})\n`,
    );
  } else process.stdout.write(`cold-start: failed: ${failure.message}\n`);
  process.exit(failure || (result.lost as number) > 0 ? 1 : 0);
}

await main();
