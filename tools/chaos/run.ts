/**
 * One chaos run: start the platform as processes, run the workload, inject the faults one after
 * another (each followed by its recovery), drain, check every invariant. Returns the report; the
 * caller prints it (tools/cli/chaos.ts) or asserts on it (tests/chaos.int.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerStockSchemas } from '../../lib/avro-registry.ts';
import { waitFor } from '../../lib/retry.ts';
import { freePort } from '../stack/proc.ts';
import { redisMasterFor } from '../stack/redis-cluster.ts';
import type { Config } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka.ts';
import { createPgPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { rowsFor } from '../../stream-processors/adapters/pg-stock.ts';
import { rebuildViews } from '../../stream-processors/views-maintenance.ts';
import { summarize } from '../../stream-processors/domain/fold.ts';
import { diffSku } from '../../stream-processors/domain/reconcile.ts';
import { defaultFaults, faultsNotFor, STACK_FAULTS, rng, type ChaosOptions, type FaultName } from './options.ts';
import { killComponent, Platform, recoverStack, removeRedisData, stopPostgresImmediately, type ProcName } from './platform.ts';
import { faultResult, invariant, verdict, type ChaosReport, type FaultResult, type InvariantResult } from './report.ts';
import {
  ADJ_START_ON_HAND,
  allSkus,
  newAdjustmentRecord,
  newBuyerRecord,
  newProbeRecord,
  runAdjustments,
  runBuyers,
  runErp,
  runIds,
  runProbe,
  setupCatalog,
  startSubscribers,
  watchOrderEvents,
  type ErpRecord,
  type Subscriber,
} from './workload.ts';


/** How long a killed cluster node stays down before the harness starts it again. */
const NODE_DOWN_MS = 6000;

export async function runChaos(config: Readonly<Config>, o: ChaosOptions, log: (line: string) => void): Promise<ChaosReport> {
  const t0 = Date.now();
  const at = () => `+${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const say = (line: string) => log(`[chaos ${at()}] ${line}`);
  const topology = config.stack.topology;
  const faultList = o.faults ?? defaultFaults(topology);
  const wrongTopology = faultsNotFor(topology, faultList);
  if (wrongTopology.length) throw new Error(`faults ${wrongTopology.join(', ')} do not exist on the ${topology} topology (kafka-node and redis-master need STACK_TOPOLOGY=cluster; kafka, redis and redis-loss the single-node stack)`);
  const instances = o.instances ?? (topology === 'cluster' ? 2 : 1);
  if (config.stack.mode !== 'native') {
    const bad = faultList.filter((f) => STACK_FAULTS.has(f));
    if (bad.length) throw new Error(`faults ${bad.join(', ')} stop stack components and need STACK=native (the harness's own stack)`);
  }
  const run = `chaos${o.seed}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  const ids = runIds(run, { adjSkus: 4, erpSkus: 4 });
  const prefix = run.replaceAll('-', '').slice(0, 32);
  const [portA, portB] = [await freePort(), await freePort()];
  // The children load their configuration from the environment: the topology and stack directory
  // of the harness's own configuration go with them (a test may have chosen them in code).
  const common = { REDIS_PREFIX: prefix, LOG_LEVEL: 'info', STACK_TOPOLOGY: topology, STACK_DIR: config.stack.dir };
  const processorEnv = { ...common, PROCESSOR_GROUP_ID: `${run}-processor`, PROCESSOR_START_FROM: 'latest', PROCESSOR_METRICS_PORT: '0' };
  const connectorsEnv = { ...common, CONNECTOR_INBOUND_GROUP_ID: `${run}-inbound`, CONNECTOR_INBOUND_START_FROM: 'latest', CONNECTOR_METRICS_PORT: '0' };
  // A second processor and connectors process join the same consumer groups: the partitions are
  // spread over both, and a kill of one is a rebalance onto the other.
  const env: Partial<Record<ProcName, Record<string, string>>> = {
    processor: processorEnv,
    ...(instances > 1 ? { 'processor-b': processorEnv, 'connectors-b': connectorsEnv } : {}),
    'gateway-a': { ...common, GATEWAY_PORT: String(portA), GATEWAY_WORKERS: '1', GATEWAY_METRICS_PORT: '0', PURCHASE_SETTLE_TIMEOUT_S: '10' },
    'gateway-b': { ...common, GATEWAY_PORT: String(portB), GATEWAY_WORKERS: '1', GATEWAY_METRICS_PORT: '0', PURCHASE_SETTLE_TIMEOUT_S: '10' },
    connectors: connectorsEnv,
  };
  const platform = new Platform({ config, env, logDir: path.join(config.stack.dir, 'chaos', run), t0, log: say });
  const pool = createPgPool(config.pg.url, { max: 6, application: 'invsync-chaos' });
  const redis = createRedis(config.redis);
  redis.on('error', () => undefined);
  const kafka = createKafka({ connection: config.kafka, clientId: `${run}-harness` });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 200 } });
  const codecs = await registerStockSchemas(config.registry.url);
  const apiKey = config.gateway.apiKeys.find((k) => k.channels.includes('wms'))?.key;
  const actForKey = config.gateway.apiKeys.find((k) => k.scopes.includes('purchase:act-for'))?.key;
  if (!actForKey) throw new Error('chaos: GATEWAY_API_KEYS has no key with scope purchase:act-for for the buyers (the development defaults do)');
  const gateways = [platform.gatewayUrl('gateway-a'), platform.gatewayUrl('gateway-b')];
  let stopWorkload = false;
  const buyers = newBuyerRecord();
  const adjustments = newAdjustmentRecord();
  const erp: ErpRecord = { committed: 0, failed: 0 };
  const probe = newProbeRecord();
  let probeStop = false;
  const faults: FaultResult[] = [];
  let subscribers: Subscriber[] = [];
  let events: Awaited<ReturnType<typeof watchOrderEvents>> | undefined;
  say(`run ${run}: ${topology} topology, ${instances} processor(s)/connectors, 2 gateways; seed ${o.seed}, ${o.minutes} min, faults ${faultList.join(',') || '(none)'}; logs in ${platform.logDir}`);

  try {
    await setupCatalog(pool, ids, o.units);
    await producer.connect();
    const ev = await watchOrderEvents(kafka, `${run}-events`, `${run}-c`);
    events = ev;
    for (const name of Object.keys(env) as ProcName[]) platform.start(name);
    if (!(await platform.waitHttpReady('gateway-a')) || !(await platform.waitHttpReady('gateway-b'))) throw new Error(`gateways did not start; see ${platform.logDir}`);
    // The run's SKUs were created before the processor joined (from the topic's end): load them
    // into the views as an operator would (`npm run views -- rebuild`).
    await rebuildViews({ pool, views: new RedisViews({ redis, prefix }), feedMaxLen: config.processor.feedMaxLen }, { skuPrefix: run });
    subscribers = startSubscribers({ ids, gateways, count: o.subscribers, probe });
    const probeLoop = runProbe({ ids, pool, everyMs: 250, until: () => probeStop, record: probe });
    // Warm-up: the whole path works (a probe change written now, through CDC, the processor and
    // a gateway, reaches a subscriber) before anything fails. The rebuild above announced the
    // probe's older value already: that one does not count.
    const tReady = Date.now();
    const warm = await waitFor(async () => [...probe.committed].some(([seq, started]) => started >= tReady && probe.firstArrival.has(seq)), { timeoutMs: 300_000, intervalMs: 200 });
    if (!warm) throw new Error(`no change reached a subscriber within 300 s of start; see ${platform.logDir}`);
    say(`platform up: gateways on ${portA} and ${portB}, ${o.subscribers} subscribers; workload starting`);

    const tWork = Date.now();
    const totalMs = o.minutes * 60_000;
    const saleMs = totalMs * 0.8;
    const work = Promise.all([
      runBuyers({ authFor: customerAuth(config, actForKey), ids, gateways, buyers: o.buyers, ratePerSec: (o.units * 1.15) / (saleMs / 1000), cancelShare: 0.1, random: rng(o.seed + 1), until: () => stopWorkload, record: buyers }),
      runAdjustments({ ids, producer, codecs, gateways, apiKey, ratePerSec: o.adjustmentsPerSec, random: rng(o.seed + 2), until: () => stopWorkload, record: adjustments }),
      runErp({ ids, pool, ratePerSec: o.erpPerSec, random: rng(o.seed + 3), until: () => stopWorkload, record: erp }),
    ]);
    const progress = setInterval(() => {
      say(`progress: ${buyers.acked.size} orders acknowledged, ${buyers.soldOutAt.length} sold-out answers, ${adjustments.acked.size} adjustments acked, ${erp.committed} ERP writes, probe ${probe.committed.size} written / ${probe.firstArrival.size} seen`);
    }, 15_000);

    // Faults spread over the run, leaving the last fifth for a quiet end of the sale.
    const slot = (totalMs * 0.85) / Math.max(1, faultList.length + 1);
    for (const [i, fault] of faultList.entries()) {
      const due = tWork + (i + 1) * slot;
      await sleep(Math.max(0, due - Date.now()));
      faults.push(await inject(fault));
    }
    await sleep(Math.max(0, tWork + totalMs - Date.now()));
    clearInterval(progress);

    say('workload stopping; draining');
    stopWorkload = true;
    await work;
    const endOfSale = Date.now();
    const views = new RedisViews({ redis, prefix });
    const skus = allSkus(ids);
    // Drain: adjustments applied, events delivered, views and subscribers converged.
    const expected = expectedOnHand(adjustments.acked);
    const adjOk = () => adjustmentMismatches(pool, expected).then((m) => m.length === 0);
    await waitFor(adjOk, { timeoutMs: 90_000, intervalMs: 500 });
    probeStop = true;
    await probeLoop;
    const viewsOk = async () => (await viewDrift(pool, views, skus)).length === 0;
    await waitFor(viewsOk, { timeoutMs: 90_000, intervalMs: 500 });
    const subsOk = async () => (await subscriberMismatches(pool, subscribers, skus)).length === 0;
    await waitFor(subsOk, { timeoutMs: 60_000, intervalMs: 500 });
    const orders = await runOrders(pool, run);
    const eventsOk = async () => orders.filter((x) => x.status !== 'abandoned').every((x) => ev.record.byOrder.get(x.id)?.includes('OrderPlaced'));
    await waitFor(eventsOk, { timeoutMs: 60_000, intervalMs: 500 });

    // ---- checks
    const invariants: InvariantResult[] = [];
    const hotSold = orders.filter((x) => x.status === 'reserved' || x.status === 'confirmed').reduce((n, x) => n + x.hotQty, 0);
    const overReserved = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM stock_levels WHERE sku = ANY($1) AND (reserved > on_hand OR reserved < 0 OR on_hand < 0)`, [skus]);
    invariants.push(invariant('oversell (units)', Math.max(0, hotSold - o.units) + Number(overReserved.rows[0]!.n), `${hotSold} of ${o.units} units of the hot SKU held by live orders; rows with reserved > on_hand: ${overReserved.rows[0]!.n}`));
    const byId = new Map(orders.map((x) => [x.id, x]));
    const missing = [...buyers.acked.values()].filter((id) => !byId.has(id) || byId.get(id)!.status === 'abandoned');
    invariants.push(invariant('acknowledged orders missing in Postgres', missing.length, `${buyers.acked.size} acknowledged${missing.length ? `; missing ${missing.slice(0, 3).join(', ')}` : ''}`));
    const dupKeys = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT idempotency_key FROM orders WHERE customer_id LIKE $1 AND status <> 'abandoned' GROUP BY 1 HAVING count(*) > 1) d`,
      [`${run}-c%`],
    );
    invariants.push(invariant('duplicate orders per Idempotency-Key', Number(dupKeys.rows[0]!.n) + buyers.conflictingAcks.length, `${buyers.conflictingAcks.length} keys answered with two order ids`));
    const live = orders.filter((x) => x.status !== 'abandoned');
    const noEvent = live.filter((x) => !ev.record.byOrder.get(x.id)?.includes('OrderPlaced'));
    invariants.push(invariant('orders without OrderPlaced event', noEvent.length, `${live.length} orders, ${ev.record.ids.size} distinct events seen`));
    const dupEvents = [...ev.record.ids.values()].filter((n) => n > 1).length;
    invariants.push(invariant('duplicate events (same event id)', dupEvents, 'at-least-once delivery; consumers dedupe by the id header', false));
    const adjMismatch = await adjustmentMismatches(pool, expected);
    const appliedIds = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM applied_adjustments WHERE adjustment_id LIKE $1`, [`${run}-adj-%`]);
    const appliedDiff = Math.abs(Number(appliedIds.rows[0]!.n) - adjustments.acked.size);
    invariants.push(
      invariant(
        'adjustments not applied exactly once',
        adjMismatch.length + appliedDiff,
        `${adjustments.acked.size} acknowledged unique (${adjustments.duplicatesSent} sent twice), ${appliedIds.rows[0]!.n} recorded applied${adjMismatch.length ? `; on_hand off at ${adjMismatch.slice(0, 2).join('; ')}` : ''}`,
      ),
    );
    const drift = await viewDrift(pool, views, skus);
    invariants.push(invariant('views differing from Postgres (touched SKUs)', drift.length, drift.slice(0, 3).join('; ')));
    const subMiss = await subscriberMismatches(pool, subscribers, skus);
    invariants.push(invariant('subscribers not converged to Postgres', subMiss.length, `${subscribers.length} subscribers × ${skus.length} SKUs${subMiss.length ? `; ${subMiss.slice(0, 3).join('; ')}` : ''}`));
    invariants.push(invariant('platform processes that exited on their own', platform.exits.length, platform.exits.map((e) => `${e.name} code ${e.code} at ${(e.atMs / 1000).toFixed(0)} s`).join('; ')));
    const hotRows = (await rowsFor(pool, [ids.hot])).get(ids.hot) ?? {};
    const unsold = summarize(ids.hot, hotRows).available;
    const lateSoldOut = buyers.soldOutAt.filter((t) => t >= endOfSale - 15_000).length;
    invariants.push(invariant('units left unsold while buyers were still trying', lateSoldOut > 0 ? unsold : 0, `${unsold} sellable at the end; ${lateSoldOut} sold-out answers in the last 15 s of the sale`, false));
    const recovered = faults.filter((f) => f.recoveryMs !== null).length;
    invariants.push(invariant('faults after which no fresh change reached a subscriber', faults.length - recovered, `${recovered} of ${faults.length} recovered`));

    const latencies = [...probe.committed.entries()].flatMap(([seq, t]) => (probe.firstArrival.has(seq) ? [probe.firstArrival.get(seq)! - t] : [])).sort((a, b) => a - b);
    const reconnects = subscribers.reduce((n, s) => n + s.reconnects, 0);
    return verdict({
      seed: o.seed,
      minutes: o.minutes,
      run,
      invariants,
      faults,
      workload: {
        purchaseAttempts: buyers.attempts,
        purchaseRetries: buyers.retries,
        ordersAcknowledged: buyers.acked.size,
        ordersCancelled: buyers.cancelled.size,
        answers: [...buyers.statuses.entries()].map(([k, v]) => `${k}:${v}`).join(','),
        adjustmentsSent: adjustments.sent,
        adjustmentsAcked: adjustments.acked.size,
        erpCommitted: erp.committed,
        erpFailed: erp.failed,
        probesWritten: probe.committed.size,
        probeP50Ms: latencies[Math.floor(latencies.length / 2)] ?? -1,
        subscriberReconnects: reconnects,
        seconds: Math.round((Date.now() - t0) / 1000),
      },
    });
  } finally {
    stopWorkload = true;
    probeStop = true;
    for (const s of subscribers) s.client.close();
    await events?.consumer.disconnect().catch(() => undefined);
    await platform.stopAll();
    await producer.disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
    redis.disconnect();
  }

  async function inject(fault: FaultName): Promise<FaultResult> {
    const tFault = Date.now();
    const atS = (tFault - t0) / 1000;
    let note = '';
    say(`fault ${fault}: injecting`);
    let tBack: number | undefined;
    switch (fault) {
      case 'processor':
        await platform.killAndRestart('processor');
        break;
      case 'kafka-node': {
        // One broker of three, down for a while: partitions it led move to the others (min ISR 2
        // keeps acks=all writes going), then it is started again and catches up.
        await killComponent(config, 'kafka-2');
        await sleep(NODE_DOWN_MS);
        tBack = await recoverStack(config, 'kafka');
        note = `kafka-2 down ${NODE_DOWN_MS / 1000} s`;
        break;
      }
      case 'redis-master': {
        // The master serving the hot SKU: its replica is promoted after the node timeout; the old
        // master is started again later and rejoins as a replica.
        const master = await redisMasterFor(config, `${prefix}:{${ids.hot}}`);
        await killComponent(config, master.name as `redis-${number}`);
        await sleep(NODE_DOWN_MS);
        tBack = await recoverStack(config, 'redis');
        note = `${master.name} (slot ${master.slot}) down ${NODE_DOWN_MS / 1000} s`;
        break;
      }
      case 'gateway':
        await platform.killAndRestart('gateway-b');
        await platform.waitHttpReady('gateway-b');
        break;
      case 'connectors':
        await platform.killAndRestart('connectors');
        break;
      case 'redis':
        await killComponent(config, 'redis');
        tBack = await recoverStack(config, 'redis');
        break;
      case 'redis-loss':
        await killComponent(config, 'redis');
        removeRedisData(config);
        note = 'data removed';
        tBack = await recoverStack(config, 'redis');
        break;
      case 'connect':
        await killComponent(config, 'connect');
        tBack = await recoverStack(config, 'connect');
        break;
      case 'kafka':
        await killComponent(config, 'kafka');
        tBack = await recoverStack(config, 'kafka');
        break;
      case 'postgres':
        stopPostgresImmediately(config);
        tBack = await recoverStack(config, 'postgres');
        break;
    }
    tBack ??= Date.now();
    const back = tBack;
    // The first change written after the fault that a subscriber sees.
    const fresh = () => {
      let best: number | null = null;
      for (const [seq, started] of probe.committed) {
        if (started < tFault) continue;
        const arrived = probe.firstArrival.get(seq);
        if (arrived !== undefined && (best === null || arrived < best)) best = arrived;
      }
      return best;
    };
    await waitFor(async () => fresh() !== null, { timeoutMs: 120_000, intervalMs: 50 });
    const arrived = fresh();
    const r = faultResult(
      { fault, atS, downMs: back - tFault, recoveryMs: arrived === null ? null : arrived - tFault, afterBackMs: arrived === null ? null : Math.max(0, arrived - back), note },
      o.recoveryTargets,
    );
    say(`fault ${fault}: back after ${(r.downMs / 1000).toFixed(1)} s; fresh change at a subscriber ${r.recoveryMs === null ? 'NEVER' : `${(r.recoveryMs / 1000).toFixed(1)} s after the fault (${((r.afterBackMs ?? 0) / 1000).toFixed(1)} s after it was back)`}`);
    return r;
  }
}

/**
 * Buyers present a customer JWT (`sub` = the customer, HS256 with GATEWAY_JWT_SECRET) when the
 * configuration has a secret; without one they go through a storefront-backend key (scope
 * purchase:act-for) that names them in X-Customer-Id. Either way the order's customer is the buyer.
 */
function customerAuth(config: Readonly<Config>, actForKey: string): (customerId: string) => Promise<Record<string, string>> {
  const secret = config.gateway.jwtSecret;
  if (!secret) return async (customerId) => ({ authorization: `Bearer ${actForKey}`, 'X-Customer-Id': customerId });
  const key = new TextEncoder().encode(secret);
  return async (customerId) => ({
    authorization: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(customerId).setIssuedAt().setExpirationTime('2h').sign(key)}`,
  });
}

function expectedOnHand(acked: Map<string, { sku: string; locationId: string; delta: number }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of acked.values()) {
    const k = `${a.sku}|${a.locationId}`;
    out.set(k, (out.get(k) ?? ADJ_START_ON_HAND) + a.delta);
  }
  return out;
}

async function adjustmentMismatches(pool: import('pg').Pool, expected: Map<string, number>): Promise<string[]> {
  if (expected.size === 0) return [];
  const keys = [...expected.keys()].map((k) => k.split('|') as [string, string]);
  const { rows } = await pool.query<{ sku: string; location_id: string; on_hand: number }>(
    `SELECT sku, location_id, on_hand FROM stock_levels s JOIN unnest($1::text[], $2::text[]) AS k(a, b) ON s.sku = k.a AND s.location_id = k.b`,
    [keys.map((k) => k[0]), keys.map((k) => k[1])],
  );
  const out: string[] = [];
  for (const r of rows) {
    const want = expected.get(`${r.sku}|${r.location_id}`)!;
    if (r.on_hand !== want) out.push(`${r.sku}@${r.location_id}: ${r.on_hand} != ${want}`);
  }
  return out;
}

async function viewDrift(pool: import('pg').Pool, views: RedisViews, skus: string[]): Promise<string[]> {
  const [pgRows, redisRows] = await Promise.all([rowsFor(pool, skus), views.readRows(skus)]);
  return skus.flatMap((s) => diffSku(s, pgRows.get(s) ?? {}, redisRows.get(s) ?? {}).map((d) => `${d.sku}@${d.locationId}: ${d.kind}`));
}

async function subscriberMismatches(pool: import('pg').Pool, subscribers: Array<{ items(): Map<string, { available: number }>; gateway: string }>, skus: string[]): Promise<string[]> {
  const pgRows = await rowsFor(pool, skus);
  const truth = new Map(skus.map((s) => [s, summarize(s, pgRows.get(s) ?? {}).available]));
  const out: string[] = [];
  subscribers.forEach((s, i) => {
    const items = s.items();
    for (const sku of skus) {
      const got = items.get(sku)?.available;
      if (got !== truth.get(sku)) out.push(`subscriber ${i} (${s.gateway}) ${sku}: ${got} != ${truth.get(sku)}`);
    }
  });
  return out;
}

async function runOrders(pool: import('pg').Pool, run: string): Promise<Array<{ id: string; status: string; hotQty: number }>> {
  const { rows } = await pool.query<{ id: string; status: string; qty: string }>(
    `SELECT o.id, o.status, coalesce(sum(l.qty), 0) AS qty FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id
      WHERE o.customer_id LIKE $1 GROUP BY o.id, o.status`,
    [`${run}-c%`],
  );
  return rows.map((r) => ({ id: r.id, status: r.status, hotQty: Number(r.qty) }));
}
