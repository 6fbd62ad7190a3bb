/**
 * The movement ledger (docs/ledger.md) on the real services: every kind of write to stock_levels
 * — adjustments (HTTP and the store), purchase write-backs, confirms, cancels, plain SQL inserts,
 * updates and deletes — is a movement whose deltas add up to the rows' figures; a rolled-back
 * write is none; dated counts replay what moved after them and refuse what they cannot; the API
 * pages it under its scope; `stock.movements` carries it as Avro (the relay on a private target
 * topic); `inspect explain` says whether the ledger explains a row.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchemaRegistry, decodeAvro, registerStockSchemas } from '../lib/avro-registry.ts';
import { loadConfig, PROJECT_ROOT } from '../lib/config.ts';
import { MOVEMENT_BUCKETS, movementFromRow, type Movement, type MovementRow } from '../lib/contracts/movements.ts';
import { createLogger } from '../lib/logger.ts';
import { mulberry32 } from '../lib/prng.ts';
import { AdjustmentStore, type ApplyItem } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { startMovementRelay, type MovementRelay } from '../connectors/ledger/relay.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { OrdersStore } from '../purchase/adapters/orders-pg.ts';
import type { AdjustmentKind, StockAdjustment, StockMovement } from '../schemas/generated/avro-types.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type TopicWatcher } from './helpers.ts';
import { get, post } from './purchase-helpers.ts';

const config = testConfig();
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 12 });
const kafka = testKafka(config);
const L1 = unique('LG-L1');
const L2 = unique('LG-L2');
const skuPrefix = unique('LG');
const target = unique('lg-movements');
const relayGroup = unique('lg-relay');
const prefix = unique('ledger').replaceAll('-', '').slice(0, 32);
const gwConfig = loadConfig({
  ...process.env,
  REDIS_PREFIX: prefix,
  GATEWAY_API_KEYS: 'lg-erp:lg-erp-key-1:erp+adjustments:write;lg-audit:lg-audit-key-1:movements:read;lg-shop:lg-shop-key-1:purchase:act-for',
});
const ERP = { Authorization: 'Bearer lg-erp-key-1' };
const AUDIT = { Authorization: 'Bearer lg-audit-key-1' };
const SHOP = { Authorization: 'Bearer lg-shop-key-1' };
const store = new AdjustmentStore({ pool });
const orders = new OrdersStore(pool);
let gateway: GatewayService;
let relay: MovementRelay;
let watcher: TopicWatcher;
let n = 0;

function adjustment(sku: string, kind: AdjustmentKind, quantity: number, more: Partial<StockAdjustment> = {}): StockAdjustment {
  n++;
  return {
    adjustmentId: unique(`lg${n}`),
    sku,
    locationId: L1,
    kind,
    quantity,
    toLocationId: null,
    occurredAt: Date.now(),
    sourceSystem: 'ledger-test',
    reference: `doc-${n}`,
    expectedOnHand: null,
    expectedVersion: null,
    countedAt: null,
    ...more,
  };
}

async function product(onHandL1?: number): Promise<string> {
  const sku = `${skuPrefix}-${++n}`;
  await pool.query(`INSERT INTO products (sku, name) VALUES ($1, 'ledger test')`, [sku]);
  if (onHandL1 !== undefined) await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $2, $3)`, [sku, L1, onHandL1]);
  return sku;
}

async function apply(items: StockAdjustment[], via = 'test:ledger') {
  return store.apply(items.map((adjustment): ApplyItem => ({ adjustment, via })));
}

async function movements(sku: string): Promise<Movement[]> {
  const r = await pool.query<MovementRow>(`SELECT * FROM stock_movements WHERE sku = $1 ORDER BY movement_id`, [sku]);
  return r.rows.map(movementFromRow);
}

async function drift(skus: string[]): Promise<unknown[]> {
  return (await pool.query(`SELECT * FROM stock_ledger_drift WHERE sku = ANY($1::text[])`, [skus])).rows;
}

async function onHand(sku: string, loc = L1): Promise<number> {
  const r = await pool.query<{ on_hand: number }>(`SELECT on_hand FROM stock_levels WHERE sku = $1 AND location_id = $2`, [sku, loc]);
  return r.rows[0]!.on_hand;
}

async function pgNow(): Promise<number> {
  const r = await pool.query<{ ms: string }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::text AS ms`);
  return Number(r.rows[0]!.ms);
}

/** A purchase written back (reserve) for `customer`: the order id. */
async function reserve(sku: string, qty: number, customer = unique('cust')): Promise<string> {
  const holdId = randomUUID();
  const r = await orders.writeHolds([{ holdId, customerId: customer, idempotencyKey: unique('idem'), hash: 'h', items: [{ sku, qty }], expiresAt: new Date(Date.now() + 600_000) }]);
  expect(r.get(holdId)?.ok).toBe(true);
  return holdId;
}

/** Reserves and confirms (the units leave the shelf). */
async function sell(sku: string, qty: number): Promise<string> {
  const id = await reserve(sku, qty);
  expect((await orders.transition(id, 'confirmed')).ok).toBe(true);
  return id;
}

beforeAll(async () => {
  await pool.query(`INSERT INTO locations (location_id, name) VALUES ($1, 'ledger test 1'), ($2, 'ledger test 2')`, [L1, L2]);
  const codecs = await registerStockSchemas(config.registry);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: target, numPartitions: 2 }] });
  await admin.disconnect();
  watcher = await watchTopic(kafka, target, { fromBeginning: true, binary: true });
  relay = await startMovementRelay({ kafka, pool, codec: codecs.stockMovement, logger, registry: new Registry(), groupId: relayGroup, topics: { target }, fromBeginning: false });
  await relay.joined;
  gateway = await startGatewayService(gwConfig, logger, { port: 0, metricsDefaults: false });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await relay?.stop();
  await watcher?.stop();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [target] }).catch(() => undefined);
  await admin.deleteGroups([relayGroup]).catch(() => undefined);
  await admin.disconnect();
  await pool.query(`DELETE FROM stock_movement_baselines WHERE sku LIKE $1`, [`${skuPrefix}%`]);
  await pool.end();
  await cleanUp(config, { skuPrefixes: [skuPrefix], redisPrefixes: [prefix] });
});

describe('the ledger records every write', () => {
  it('adds up to the figures of every row after a mixed workload, plain SQL included; a rollback leaves nothing', async () => {
    const rnd = mulberry32(14);
    const skus = [await product(40), await product(40), await product(40), await product(40)];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const open: string[] = [];
    for (let step = 0; step < 60; step++) {
      const sku = pick(skus);
      const r = rnd();
      if (r < 0.25) {
        const batch = [adjustment(sku, 'RECEIPT', 1 + Math.floor(rnd() * 5)), adjustment(pick(skus), 'TRANSFER', 1, { toLocationId: L2 }), adjustment(pick(skus), 'PICK', 1)];
        await apply(batch);
      } else if (r < 0.35) {
        await apply([adjustment(sku, 'COUNT', 20 + Math.floor(rnd() * 20))]);
      } else if (r < 0.55) {
        // Plain SQL, as a back office would: no context, the database user is the actor.
        await pool.query(`UPDATE stock_levels SET on_hand = on_hand + $3, safety_stock = $4 WHERE sku = $1 AND location_id = $2`, [sku, L1, 1 + Math.floor(rnd() * 3), Math.floor(rnd() * 3)]);
      } else if (r < 0.8) {
        open.push(await reserve(sku, 1 + Math.floor(rnd() * 2)).catch(() => ''));
      } else if (open.length > 0) {
        const id = open.splice(Math.floor(rnd() * open.length), 1)[0]!;
        if (id) await orders.transition(id, rnd() < 0.5 ? 'confirmed' : 'cancelled');
      }
    }
    // A row inserted and deleted by hand, and a write rolled back.
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, $2, 7)`, [skus[0], L2]).catch(() =>
      pool.query(`UPDATE stock_levels SET on_hand = on_hand + 7 WHERE sku = $1 AND location_id = $2`, [skus[0], L2]),
    );
    await pool.query(`DELETE FROM stock_levels WHERE sku = $1 AND location_id = $2 AND reserved = 0`, [skus[0], L2]);
    const before = (await movements(skus[1]!)).length;
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`UPDATE stock_levels SET on_hand = on_hand + 1000 WHERE sku = $1`, [skus[1]]);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect((await movements(skus[1]!)).length).toBe(before);

    expect(await drift(skus)).toEqual([]);
    const all = (await Promise.all(skus.map(movements))).flat();
    const kinds = new Set(all.map((m) => m.kind));
    for (const k of ['adjustment', 'sql', 'reserve']) expect(kinds).toContain(k);
    expect([...kinds].some((k) => k === 'confirm' || k === 'cancel')).toBe(true);
    // Per row, each movement's figures are the previous ones plus its deltas, in version order.
    const rows = new Map<string, Movement[]>();
    for (const m of all) rows.set(`${m.sku}/${m.locationId}`, [...(rows.get(`${m.sku}/${m.locationId}`) ?? []), m]);
    for (const list of rows.values()) {
      list.sort((a, b) => a.version - b.version || a.movementId - b.movementId);
      for (let i = 1; i < list.length; i++) {
        if (list[i]!.version === list[i - 1]!.version) continue; // a delete shares its row's last version
        for (const b of MOVEMENT_BUCKETS) expect(list[i]!.after[b]).toBe((list[i - 1]!.deleted ? 0 : list[i - 1]!.after[b]) + list[i]!.delta[b]);
      }
    }
    const sql = all.find((m) => m.kind === 'sql')!;
    expect(sql.actor).toBeTruthy();
    const adj = all.find((m) => m.kind === 'adjustment')!;
    expect(adj).toMatchObject({ sourceSystem: 'ledger-test', actor: 'test:ledger' });
    expect((adj.details as { adjustmentIds: string[] }).adjustmentIds.length).toBeGreaterThan(0);
    const res = all.find((m) => m.kind === 'reserve')!;
    expect(res.reference).toMatch(/^order:/);
    expect(res.delta.reserved).toBeGreaterThan(0);
  });
});

describe('dated counts', () => {
  it('a late count during a flash sale leaves exactly the sales and receipts made after it', async () => {
    const sku = await product(100);
    await sell(sku, 5); // before the count: already in on hand when it was counted
    const countedAt = await pgNow();
    await new Promise((r) => setTimeout(r, 20));
    // The sale goes on while the count travels: 8 single-unit sales, concurrent, a receipt and a pick.
    await Promise.all(Array.from({ length: 8 }, () => sell(sku, 1)));
    await apply([adjustment(sku, 'RECEIPT', 4), adjustment(sku, 'PICK', 1)]);
    const open = await reserve(sku, 2); // reserved, not shipped: still on the shelf
    expect(await onHand(sku)).toBe(100 - 5 - 8 + 4 - 1);

    // The count found 93 units at countedAt (2 fewer than the 95 the platform believed then).
    const r = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'COUNT', 93, { countedAt }), ERP);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(await onHand(sku)).toBe(93 - 8 + 4 - 1);
    const count = (await movements(sku)).at(-1)!;
    expect(count).toMatchObject({ kind: 'adjustment', reason: 'COUNT', effectiveAt: countedAt, delta: expect.objectContaining({ onHand: -2 }) });
    expect(await drift([sku])).toEqual([]);
    expect((await orders.transition(open, 'cancelled')).ok).toBe(true);

    // Refusals change nothing: an older count than the one applied, one before the ledger's
    // horizon, one in the future, and countedAt on a kind that is not a count.
    const state = await pool.query(`SELECT on_hand, version FROM stock_levels WHERE sku = $1`, [sku]);
    const movementsBefore = (await movements(sku)).length;
    const superseded = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'COUNT', 50, { countedAt: countedAt - 1000 }), ERP);
    expect([superseded.status, (superseded.body as { error: string }).error]).toEqual([409, 'count_superseded']);
    const old = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'COUNT', 50, { countedAt: 1000 }), ERP);
    expect([old.status, (old.body as { error: string }).error]).toEqual([409, 'count_too_old']);
    const future = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'COUNT', 50, { countedAt: (await pgNow()) + 3_600_000 }), ERP);
    expect([future.status, (future.body as { error: string }).error]).toEqual([409, 'count_in_future']);
    const receipt = await post(gateway.url, '/v1/adjustments', adjustment(sku, 'RECEIPT', 1, { countedAt }), ERP);
    expect([receipt.status, (receipt.body as { error: string; details: { field: string } }).details.field]).toEqual([400, 'countedAt']);
    expect((await pool.query(`SELECT on_hand, version FROM stock_levels WHERE sku = $1`, [sku])).rows).toEqual(state.rows);
    expect((await movements(sku)).length).toBe(movementsBefore);
  });
});

describe('reading the ledger', () => {
  it('GET /v1/movements pages a SKU under its scope, and refuses bad queries', async () => {
    const sku = await product(10);
    for (let i = 0; i < 4; i++) await apply([adjustment(sku, 'RECEIPT', i + 1)]);
    const expected = await movements(sku);
    expect(expected).toHaveLength(5);

    expect((await get(gateway.url, `/v1/movements?sku=${sku}`)).status).toBe(401);
    expect((await get(gateway.url, `/v1/movements?sku=${sku}`, SHOP)).status).toBe(403);
    for (const q of ['limit=0', 'limit=abc', 'since=yesterday', 'color=red', 'sku=%01', 'since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z']) {
      const r = await get(gateway.url, `/v1/movements?${q}`, AUDIT);
      expect([q, r.status, (r.body as { error: string }).error]).toEqual([q, 400, 'invalid_query']);
    }
    const seen: Movement[] = [];
    let after: number | null = null;
    do {
      const r = await get(gateway.url, `/v1/movements?sku=${sku}&limit=2${after !== null ? `&after=${after}` : ''}`, AUDIT);
      expect(r.status).toBe(200);
      const page = r.body as { items: Movement[]; next: number | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items);
      after = page.next;
    } while (after !== null);
    expect(seen).toEqual(expected);
    const window = await get(gateway.url, `/v1/movements?sku=${sku}&location=${L1}&since=${expected[1]!.recordedAt}&until=${expected[3]!.recordedAt}`, ERP);
    expect((window.body as { items: Movement[] }).items.map((m) => m.movementId)).toEqual([expected[1]!.movementId, expected[2]!.movementId]);
  });

  it('stock.movements carries every movement as Avro, keyed by SKU', async () => {
    const sku = await product(3);
    await apply([adjustment(sku, 'RECEIPT', 2)]);
    await sell(sku, 1);
    const expected = await movements(sku);
    const registry = createSchemaRegistry(config.registry);
    const decoded = async () => {
      const out: StockMovement[] = [];
      for (const m of watcher.messages.filter((x) => x.key === sku)) out.push(await decodeAvro<StockMovement>(registry, Buffer.from(m.value!, 'binary')));
      return out;
    };
    await watcher.waitFor((m) => m.key === sku && m.headers['invsync.movement-id'] === String(expected.at(-1)!.movementId), 30_000);
    const got = new Map((await decoded()).map((m) => [m.movementId, m]));
    expect([...got.keys()].sort((a, b) => a - b)).toEqual(expected.map((m) => m.movementId));
    const sale = expected.find((m) => m.kind === 'confirm')!;
    expect(got.get(sale.movementId)).toMatchObject({ sku, locationId: L1, kind: 'confirm', onHandDelta: -1, reservedDelta: -1, onHand: sale.after.onHand, version: sale.version, recordedAt: sale.recordedAt });
  });

  it('inspect explain shows the movements and exits 1 when the ledger does not explain a row', async () => {
    const sku = await product(4);
    await apply([adjustment(sku, 'PICK', 1)]);
    const run = (s: string) => spawnSync(process.execPath, ['--import', 'tsx', 'tools/cli/inspect.ts', 'explain', s, '--json'], { cwd: PROJECT_ROOT, encoding: 'utf8', env: process.env, timeout: 30_000 });
    const ok = run(sku);
    expect(ok.status, ok.stderr).toBe(0);
    const body = JSON.parse(ok.stdout) as { rows: Array<{ movements: unknown[]; unexplained: Record<string, number> }> };
    expect(body.rows[0]!.movements).toHaveLength(2);
    // A baseline with no movements or row behind it: figures the ledger claims and nothing holds.
    const ghost = `${skuPrefix}-ghost`;
    await pool.query(`INSERT INTO stock_movement_baselines (sku, location_id, on_hand) VALUES ($1, $2, 5)`, [ghost, L1]);
    const bad = run(ghost);
    expect(bad.status).toBe(1);
    expect((JSON.parse(bad.stdout) as { rows: Array<{ unexplained: { onHand: number } }> }).rows[0]!.unexplained.onHand).toBe(5);
  });
});
