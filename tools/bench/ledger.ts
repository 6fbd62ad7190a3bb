/**
 * Benchmark: what the movement ledger (docs/ledger.md) costs, with the ledger on beside off in one
 * run (issue 14, "Measure"): commit -> view latency and adjustments applied per second.
 *
 * "Off" disables the ledger's triggers (`ALTER TABLE stock_levels DISABLE TRIGGER
 * stock_levels_movement_insert, ...`); "on" enables them. Phases alternate (on/off, then off/on: ABBA) over
 * --rounds rounds; each phase runs
 *   - latency: single-row UPDATEs at --rate per second for --seconds over --rows bench SKUs, each
 *     measured from its Postgres commit time to its entry on the feed of a stock processor child
 *     (tools/bench/lib/processor-child.ts, own prefix, group and private topics) — with the ledger
 *     on, every commit also writes a movement, which Debezium captures too;
 *   - adjustments/s: AdjustmentStore.apply (the connector's exactly-once apply: one transaction per
 *     batch of --batch adjustments, RECEIPT/PICK alternating over the rows) from --workers
 *     concurrent writers for --adj-seconds.
 * Ratios are on / off of the same round; the report gives their median. One short phase of each
 * mode runs first, unmeasured, to warm the JITs and caches.
 *
 * Afterwards the trigger is enabled whatever happened, and `stock_ledger_resync` records a
 * `resync` movement for any row another writer changed while it was off, so the ledger still adds
 * up. Bounded: a hard limit of 5 minutes. Loopback only. Rows, prefix and group are removed.
 *
 * Usage: npm run bench:ledger -- [--rate 500] [--seconds 8] [--rows 1000] [--rounds 2]
 *          [--adj-seconds 4] [--batch 50] [--workers 4] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { registerStockSchemas } from '../../lib/avro-registry.ts';
import { loadConfigOrExit } from '../../lib/config.ts';
import { redisKeys } from '../../lib/contracts/redis-keys.ts';
import type { SkuState } from '../../lib/contracts/feed.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { AdjustmentStore } from '../../connectors/inbound/adapters/pg-adjustments.ts';
import { cleanUp } from '../../tests/helpers.ts';
import { machine, parseArgs } from './args.ts';
import { installHardLimit, killAllChildren, spawnNode, stopChild, type Child } from './lib/children.ts';
import { readFeed } from './lib/feed.ts';
import { progress, runId } from './lib/run.ts';
import { median, Receipts } from './lib/receipts.ts';
import type { Stats } from './lib/stats.ts';
import { benchSku, seedBenchRows, steadyUpdates } from './lib/update-load.ts';

type Mode = 'on' | 'off';

/** The ledger's triggers on stock_levels (migration 0019). */
const LEDGER_TRIGGERS = ['stock_levels_movement_insert', 'stock_levels_movement_update', 'stock_levels_movement_delete'];

async function setLedger(pool: pg.Pool, mode: Mode): Promise<void> {
  const verb = mode === 'on' ? 'ENABLE' : 'DISABLE';
  await pool.query(`ALTER TABLE stock_levels ${LEDGER_TRIGGERS.map((t) => `${verb} TRIGGER ${t}`).join(', ')}`);
}

async function adjustmentsPerSecond(
  store: AdjustmentStore,
  o: { skuOf: (i: number) => string; rows: number; location: string; seconds: number; batch: number; workers: number; tag: string },
): Promise<{ applied: number; perS: number; batchMs: number }> {
  let applied = 0;
  let batches = 0;
  let n = 0;
  const started = performance.now();
  const until = started + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.workers }, async () => {
      while (performance.now() < until) {
        const items = Array.from({ length: o.batch }, () => {
          const i = n++;
          return {
            via: 'bench:ledger',
            adjustment: {
              adjustmentId: `${o.tag}-${i}`,
              sku: o.skuOf(i % o.rows),
              locationId: o.location,
              kind: i % 2 === 0 ? ('RECEIPT' as const) : ('PICK' as const),
              quantity: 1,
              toLocationId: null,
              occurredAt: Date.now(),
              sourceSystem: 'bench',
              reference: null,
              expectedOnHand: null,
              expectedVersion: null,
              countedAt: null,
            },
          };
        });
        const out = await store.apply(items);
        applied += out.filter((x) => x.outcome === 'applied').length;
        batches++;
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  return { applied, perS: Math.round(applied / elapsedS), batchMs: +((elapsedS * 1000 * o.workers) / Math.max(1, batches)).toFixed(2) };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rate = args.get('rate', 500);
  const seconds = args.get('seconds', 8);
  const rows = Math.round(args.get('rows', 1000));
  const rounds = Math.round(args.get('rounds', 2));
  const adj = { seconds: args.get('adj-seconds', 4), batch: Math.round(args.get('batch', 50)), workers: Math.round(args.get('workers', 4)) };
  const config = loadConfigOrExit();
  const id = runId();
  const skuPrefix = `BLG-${id}-`;
  const location = `${skuPrefix}L1`;
  const prefix = `blg-${id}`;
  const group = `bench-ledger-${id}`;
  const probe = `${skuPrefix}PROBE`;
  const skuOf = (i: number) => benchSku(skuPrefix, i);
  const pool = createPgPool(config.pg.url, { max: 16, application: 'invsync-bench-ledger' });
  const feedRedis = createRedis(config.redis);
  const store = new AdjustmentStore({ pool });
  const result: Record<string, unknown> = { benchmark: 'ledger', machine: machine(), rate, seconds, rows, rounds, adjustments: adj };
  let processor: Child | undefined;
  let reading = true;
  let feedLoop: Promise<void> | undefined;
  let failure: Error | undefined;
  installHardLimit(300_000, 'error: 5 minutes elapsed; killing children');

  try {
    progress(`ledger: ${rounds} rounds of on/off (ABBA); each phase ${rate} updates/s for ${seconds} s, then adjustments for ${adj.seconds} s (run ${id})`);
    await pool.query(`INSERT INTO locations (location_id, name) VALUES ($1, 'bench ledger') ON CONFLICT DO NOTHING`, [location]);
    await pool.query(`INSERT INTO products (sku, name) SELECT $2 || lpad(n::text, 5, '0'), 'bench' FROM generate_series(1, $1::int) n ON CONFLICT DO NOTHING`, [rows, skuPrefix]);
    await seedBenchRows(pool, skuPrefix, rows, [location]);
    await registerStockSchemas(config.registry.url);
    let ready!: () => void;
    const live = new Promise<void>((r) => (ready = r));
    processor = spawnNode('processor', 'tools/bench/lib/processor-child.ts', ['--prefix', prefix, '--group', group, '--probe', probe], {
      stdin: true,
      onStdoutLine: (line) => (line.includes('"ready"') ? ready() : progress(`  [processor] ${line}`)),
    });
    await Promise.race([live, sleep(90_000).then(() => Promise.reject(new Error('the processor was not live within 90 s')))]);

    const receipts = new Receipts();
    const key = redisKeys(prefix).feed;
    const last = (await feedRedis.xrevrange(key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    feedLoop = readFeed(feedRedis, key, last[0]?.[0] ?? '0-0', () => reading, (state: SkuState, now) => {
      if (state.sku.startsWith(skuPrefix)) receipts.add(state.sku, state.version, state.commitTs, now);
    });

    // Warm-up, not measured: the first phase of a run paid for the processor's and the connector's
    // JIT and cold caches (the first "on" phase of round 1 was 2-5x every later one in the runs of
    // 2026-12-01), which ABBA alone does not cancel.
    for (const mode of ['on', 'off'] as Mode[]) {
      await setLedger(pool, mode);
      await steadyUpdates(pool, { rate, seconds: Math.min(seconds, 4), rows, skuOf, location, onAck: () => undefined });
      await adjustmentsPerSecond(store, { skuOf, rows, location, ...adj, seconds: Math.min(adj.seconds, 2), tag: `${skuPrefix}warm${mode}` });
    }
    progress('  warmed up (one short unmeasured phase of each mode)');

    const phases: Array<{ round: number; mode: Mode; latency: Stats & { matched: number; missing: number }; adjustments: { applied: number; perS: number; batchMs: number } }> = [];
    for (let round = 0; round < rounds; round++) {
      for (const mode of (round % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
        await setLedger(pool, mode);
        receipts.clear();
        const acks = new Set<string>();
        const load = await steadyUpdates(pool, { rate, seconds, rows, skuOf, location, onAck: (sku, version) => void acks.add(`${sku}/${version}`) });
        const drainBy = Date.now() + 20_000;
        while (Date.now() < drainBy && ![...acks].every((k) => receipts.settled(k))) await sleep(200);
        const view = receipts.of(acks);
        const a = await adjustmentsPerSecond(store, { skuOf, rows, location, ...adj, tag: `${skuPrefix}${round}${mode}` });
        phases.push({ round, mode, latency: { ...view.stats, matched: view.matched, missing: view.missing }, adjustments: a });
        progress(
          `  round ${round + 1} ledger ${mode}: commit -> view p50 ${view.stats.p50} ms, p99 ${view.stats.p99} ms (${view.matched}/${load.total}, ${view.missing} missing); adjustments ${a.perS}/s (batch of ${adj.batch} in ${a.batchMs} ms)`,
        );
      }
    }
    const pair = (round: number) => ({ on: phases.find((p) => p.round === round && p.mode === 'on')!, off: phases.find((p) => p.round === round && p.mode === 'off')! });
    const perRound = Array.from({ length: rounds }, (_, r) => {
      const { on, off } = pair(r);
      return {
        latencyP50: +(on.latency.p50 / off.latency.p50).toFixed(3),
        latencyP99: +(on.latency.p99 / off.latency.p99).toFixed(3),
        adjustmentsPerS: +(on.adjustments.perS / off.adjustments.perS).toFixed(3),
      };
    });
    result.phases = phases;
    result.ratiosOnOverOff = {
      perRound,
      median: {
        latencyP50: median(perRound.map((r) => r.latencyP50)),
        latencyP99: median(perRound.map((r) => r.latencyP99)),
        adjustmentsPerS: median(perRound.map((r) => r.adjustmentsPerS)),
      },
    };
  } catch (err) {
    failure = err as Error;
    progress(`error: ${failure.message}`);
    result.error = failure.message;
  } finally {
    reading = false;
    await setLedger(pool, 'on').catch((err: Error) => progress(`  could not enable the ledger trigger: ${err.message} — run: ALTER TABLE stock_levels ENABLE TRIGGER ${LEDGER_TRIGGERS.join(', ENABLE TRIGGER ')}`));
    const resynced = await pool.query<{ n: string }>(`SELECT stock_ledger_resync('bench:ledger ran with the ledger off') AS n`).catch(() => null);
    if (resynced) result.resyncedRows = Number(resynced.rows[0]!.n);
    if (processor?.alive()) {
      processor.proc.stdin?.end();
      await Promise.race([processor.exited, sleep(20_000)]);
      await stopChild(processor, 5000);
    }
    killAllChildren();
    await feedLoop?.catch(() => undefined);
    await cleanUp(config, { redisPrefixes: [prefix], skuPrefixes: [skuPrefix], groups: [group] }).catch((err: Error) => progress(`  cleanup: ${err.message}`));
    await pool.query(`DELETE FROM applied_adjustments WHERE adjustment_id LIKE $1`, [`${skuPrefix}%`]).catch(() => undefined);
    await pool.query(`DELETE FROM products WHERE sku LIKE $1`, [`${skuPrefix}%`]).catch(() => undefined);
    await pool.query(`DELETE FROM locations WHERE location_id = $1`, [location]).catch(() => undefined);
    feedRedis.disconnect();
    await pool.end().catch(() => undefined);
  }
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (!failure) {
    const m = (result.ratiosOnOverOff as { median: Record<string, number> }).median;
    process.stdout.write(`ledger on / off (median of ${rounds} rounds): commit -> view p50 ${m.latencyP50}x, p99 ${m.latencyP99}x; adjustments/s ${m.adjustmentsPerS}x\n`);
  } else process.stdout.write(`ledger benchmark: failed: ${failure.message}\n`);
  process.exit(failure ? 1 : 0);
}

await main();
