/**
 * Housekeeping (lib/housekeeping.ts) on the real Postgres: old outbox rows, old applied
 * adjustments and old orders' idempotency keys are pruned; recent ones, keys of orders still
 * reserved, and every outbox row while the outbox replication slot is missing are kept; a round
 * that finds another instance holding the lock does nothing.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Housekeeper, HOUSEKEEPING_LOCK_KEY, outboxSlotName } from '../lib/housekeeping.ts';
import { createLogger } from '../lib/logger.ts';
import { outboxTopic } from '../lib/topics.ts';
import { testConfig, testKafka, unique } from './helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
// Test events go to a private topic, never to orders.events.
const aggregateType = unique('hk').replaceAll('-', '_');
const DAY = 86_400_000;
const retention = { outboxMs: DAY, adjustmentsMs: 30 * DAY, idempotencyMs: 30 * DAY };

beforeAll(async () => {
  const admin = testKafka(config).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: outboxTopic(aggregateType), numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
});

afterAll(async () => {
  await pool.end();
});

interface Seeded {
  outbox: { old: string; recent: string };
  adjustments: { old: string; recent: string };
  orders: { oldDone: string; oldReserved: string; recentDone: string };
}

/** Rows of every kind, old and recent, with unique ids. */
async function seed(): Promise<Seeded> {
  const tag = unique('hk');
  const ob = async (age: string) =>
    (
      await pool.query<{ id: string }>(
        `INSERT INTO outbox (aggregatetype, aggregateid, type, payload, created_at) VALUES ($1, $2, 'Test', '{}', clock_timestamp() - $3::interval) RETURNING id`,
        [aggregateType, tag, age],
      )
    ).rows[0]!.id;
  const adj = async (id: string, age: string) => {
    await pool.query(
      `INSERT INTO applied_adjustments (adjustment_id, payload_hash, sku, location_id, kind, quantity, occurred_at, source_system, received_via, result, applied_at)
       VALUES ($1, 'h', $2, 'WH-1', 'RECEIPT', 1, now(), 'test', 'http:test', '{}', clock_timestamp() - $3::interval)`,
      [id, `${tag}-SKU`, age],
    );
    return id;
  };
  const order = async (id: string, status: string, age: string) => {
    await pool.query(
      `INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, created_at, expires_at)
       VALUES (gen_random_uuid(), 'hk-customer', $2, $1, 'hash', clock_timestamp() - $3::interval, clock_timestamp() + interval '1 hour')`,
      [id, status, age],
    );
    return id;
  };
  return {
    outbox: { old: await ob('2 days'), recent: await ob('1 minute') },
    adjustments: { old: await adj(`${tag}-old`, '40 days'), recent: await adj(`${tag}-new`, '1 day') },
    orders: { oldDone: await order(`${tag}-od`, 'confirmed', '40 days'), oldReserved: await order(`${tag}-or`, 'reserved', '40 days'), recentDone: await order(`${tag}-rd`, 'confirmed', '1 day') },
  };
}

async function present(s: Seeded) {
  const outbox = new Set((await pool.query<{ id: string }>('SELECT id FROM outbox WHERE id = ANY($1::uuid[])', [[s.outbox.old, s.outbox.recent]])).rows.map((r) => r.id));
  const adj = new Set(
    (await pool.query<{ adjustment_id: string }>('SELECT adjustment_id FROM applied_adjustments WHERE adjustment_id = ANY($1)', [[s.adjustments.old, s.adjustments.recent]])).rows.map((r) => r.adjustment_id),
  );
  const keys = new Set(
    (await pool.query<{ idempotency_key: string }>('SELECT idempotency_key FROM orders WHERE idempotency_key = ANY($1)', [[s.orders.oldDone, s.orders.oldReserved, s.orders.recentDone]])).rows.map((r) => r.idempotency_key),
  );
  return {
    outbox: { old: outbox.has(s.outbox.old), recent: outbox.has(s.outbox.recent) },
    adjustments: { old: adj.has(s.adjustments.old), recent: adj.has(s.adjustments.recent) },
    keys: { oldDone: keys.has(s.orders.oldDone), oldReserved: keys.has(s.orders.oldReserved), recentDone: keys.has(s.orders.recentDone) },
  };
}

describe('housekeeping', () => {
  it('prunes old outbox rows, old applied adjustments and old idempotency keys; keeps recent ones and reserved orders\u2019 keys', async () => {
    const s = await seed();
    const hk = new Housekeeper({ pool, logger, retention, outboxSlot: outboxSlotName(), batch: 1 });
    const r = await hk.runOnce();
    expect(r.skipped).toBe(false);
    expect(r.outboxKept).toBeUndefined();
    expect(r.outbox).toBeGreaterThanOrEqual(1);
    expect(r.adjustments).toBeGreaterThanOrEqual(1);
    expect(r.idempotencyKeys).toBeGreaterThanOrEqual(1);
    expect(await present(s)).toEqual({
      outbox: { old: false, recent: true },
      adjustments: { old: false, recent: true },
      keys: { oldDone: false, oldReserved: true, recentDone: true },
    });
    // The order itself stays; only its key is forgotten.
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE customer_id = 'hk-customer' AND status = 'confirmed' AND created_at < now() - interval '39 days'`);
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(1);
  });

  it('keeps every outbox row while the outbox replication slot is missing (its recovery snapshot needs them)', async () => {
    const s = await seed();
    const hk = new Housekeeper({ pool, logger, retention, outboxSlot: 'invsync_no_such_slot' });
    const r = await hk.runOnce();
    expect(r.outboxKept).toBe('no_slot');
    expect(r.outbox).toBe(0);
    const p = await present(s);
    expect(p.outbox).toEqual({ old: true, recent: true });
    expect(p.adjustments.old).toBe(false);
    // Clean up what this test kept.
    await pool.query('DELETE FROM outbox WHERE id = ANY($1::uuid[])', [[s.outbox.old, s.outbox.recent]]);
  });

  it('a round that finds another instance holding the lock does nothing', async () => {
    const s = await seed();
    const other = new Housekeeper({ pool, logger, retention, outboxSlot: outboxSlotName() });
    // Hold the lock the way a running round does: from another session.
    const holder = await pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [HOUSEKEEPING_LOCK_KEY]);
      const r = await other.runOnce();
      expect(r).toEqual({ skipped: true, outbox: 0, adjustments: 0, idempotencyKeys: 0 });
      expect(await present(s)).toEqual({
        outbox: { old: true, recent: true },
        adjustments: { old: true, recent: true },
        keys: { oldDone: true, oldReserved: true, recentDone: true },
      });
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1)', [HOUSEKEEPING_LOCK_KEY]);
      holder.release();
    }
    expect((await other.runOnce()).skipped).toBe(false);
    expect((await present(s)).adjustments.old).toBe(false);
  });

  it('the schedule runs rounds until stopped', async () => {
    const s = await seed();
    const hk = new Housekeeper({ pool, logger, retention, outboxSlot: outboxSlotName() });
    hk.start(100);
    try {
      for (let i = 0; i < 300 && (await present(s)).adjustments.old; i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await hk.stop();
    }
    expect((await present(s)).adjustments.old).toBe(false);
  });
});
