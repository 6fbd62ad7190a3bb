/**
 * Committed stock changes leave Postgres through Debezium onto the CDC topic; rolled-back ones
 * never do. Real Postgres, Kafka and Kafka Connect/Debezium.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPICS } from '../lib/topics.ts';
import { decodeStockChange, type StockChange } from '../stream-processors/domain/stock-change.ts';
import { cleanUp, testConfig, testKafka, unique, watchTopic, type Received, type TopicWatcher } from './helpers.ts';
import { waitUntil } from './processor-helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
let watcher: TopicWatcher;

function change(m: Received): StockChange | undefined {
  const d = decodeStockChange(m.value, m.key);
  return d.ok && 'change' in d ? d.change : undefined;
}

const forSku = (sku: string, pred: (c: StockChange) => boolean = () => true) => (m: Received) => {
  const c = change(m);
  return c !== undefined && c.sku === sku && pred(c);
};

beforeAll(async () => {
  watcher = await watchTopic(testKafka(config), TOPICS.cdcStockLevels);
});

/** Every SKU a test creates goes through here, so afterAll can remove its rows. */
const created: string[] = [];
const createdPrefixes: string[] = [];
function newSku(prefix: string): string {
  const sku = unique(prefix);
  created.push(sku);
  return sku;
}

afterAll(async () => {
  await watcher?.stop();
  await pool.end();
  await cleanUp(config, { skus: created, skuPrefixes: createdPrefixes });
});

describe('CDC of stock_levels', () => {
  it('an UPDATE yields a change event with the committed values and the new version', async () => {
    const sku = newSku('cdc-upd');
    const inserted = await pool.query<{ version: string }>(
      `INSERT INTO stock_levels (sku, location_id, on_hand, reserved, safety_stock) VALUES ($1, 'WH-1', 10, 2, 1) RETURNING version`,
      [sku],
    );
    const updated = await pool.query<{ version: string }>(
      `UPDATE stock_levels SET on_hand = on_hand + 5 WHERE sku = $1 AND location_id = 'WH-1' RETURNING version`,
      [sku],
    );
    const newVersion = Number(updated.rows[0]!.version);
    expect(newVersion).toBeGreaterThan(Number(inserted.rows[0]!.version));

    const msg = await watcher.waitFor(forSku(sku, (c) => c.op === 'update'));
    const c = change(msg)!;
    expect(c.row).toMatchObject({ sku, locationId: 'WH-1', onHand: 15, reserved: 2, safetyStock: 1, version: newVersion });
    // Keyed by sku (message.key.columns), so every location of a SKU shares one partition.
    expect(JSON.parse(msg.key!)).toEqual({ sku });
    // Insert came first on the same partition (same key), in commit order.
    const events = watcher.messages.filter(forSku(sku)).map((m) => change(m)!);
    expect(events.map((e) => e.op)).toEqual(['create', 'update']);
    expect(c.commitTs).toBeGreaterThan(Date.now() - 120_000);
  });

  it('a rolled-back transaction yields nothing; the next commit does', async () => {
    const sku = newSku('cdc-rb');
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 5)`, [sku]);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE stock_levels SET on_hand = 777 WHERE sku = $1`, [sku]);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await pool.query(`UPDATE stock_levels SET on_hand = 6 WHERE sku = $1`, [sku]);
    // Same key, same partition: once the committed marker arrived, anything earlier has too.
    await watcher.waitFor(forSku(sku, (c) => c.row?.onHand === 6));
    const seen = watcher.messages.filter(forSku(sku)).map((m) => change(m)!.row?.onHand);
    expect(seen).toEqual([5, 6]);
    expect(seen).not.toContain(777);
  });

  it('the version trigger bumps on every change, whatever the writer sets', async () => {
    const sku = newSku('cdc-ver');
    const a = await pool.query<{ version: string }>(
      `INSERT INTO stock_levels (sku, location_id, on_hand, version) VALUES ($1, 'WH-1', 1, 999999999999) RETURNING version`,
      [sku],
    );
    const b = await pool.query<{ version: string }>(
      `UPDATE stock_levels SET version = 1, reserved = 0 WHERE sku = $1 RETURNING version`,
      [sku],
    );
    const v1 = Number(a.rows[0]!.version);
    const v2 = Number(b.rows[0]!.version);
    expect(v1).not.toBe(999999999999);
    expect(v2).toBeGreaterThan(v1);
    const msg = await watcher.waitFor(forSku(sku, (c) => c.row?.version === v2));
    expect(change(msg)!.op).toBe('update');
  });

  it('a DELETE yields a delete event carrying the removed version, then a tombstone', async () => {
    const sku = newSku('cdc-del');
    const { rows } = await pool.query<{ version: string }>(
      `INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-2', 3) RETURNING version`,
      [sku],
    );
    await pool.query(`DELETE FROM stock_levels WHERE sku = $1`, [sku]);
    const del = await watcher.waitFor(forSku(sku, (c) => c.op === 'delete'));
    expect(change(del)).toMatchObject({ sku, locationId: 'WH-2', row: null, version: Number(rows[0]!.version) });
    const tomb = await watcher.waitFor((m) => m.value === null && m.key !== null && JSON.parse(m.key).sku === sku);
    expect(tomb.partition).toBe(del.partition);
  });

  it('deleting one location re-stamps the SKU\'s other locations with newer versions', async () => {
    const sku = newSku('cdc-sib');
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 3), ($1, 'WH-2', 4)`, [sku]);
    const before = await pool.query<{ version: string }>(`SELECT version FROM stock_levels WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
    await pool.query(`DELETE FROM stock_levels WHERE sku = $1 AND location_id = 'WH-1'`, [sku]);
    const after = await pool.query<{ version: string; on_hand: number }>(`SELECT version, on_hand FROM stock_levels WHERE sku = $1`, [sku]);
    expect(after.rows).toHaveLength(1);
    expect(Number(after.rows[0]!.version)).toBeGreaterThan(Number(before.rows[0]!.version));
    expect(after.rows[0]!.on_hand).toBe(4);
    await watcher.waitFor(forSku(sku, (c) => c.op === 'update' && c.locationId === 'WH-2'));
    const ops = watcher.messages.filter(forSku(sku)).map((m) => `${change(m)!.op}:${change(m)!.locationId}`);
    expect(ops.slice(-2)).toEqual(['delete:WH-1', 'update:WH-2']);
  });

  it('per SKU, versions follow commit order even across locations', async () => {
    const sku = newSku('cdc-ord');
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 1), ($1, 'WH-2', 1)`, [sku]);
    const first = await pool.connect();
    try {
      await first.query('BEGIN');
      const a = await first.query<{ version: string }>(`UPDATE stock_levels SET on_hand = 2 WHERE sku = $1 AND location_id = 'WH-1' RETURNING version`, [sku]);
      const firstPid = (await first.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      let done = false;
      const second = pool
        .query<{ version: string }>(`UPDATE stock_levels SET on_hand = 3 WHERE sku = $1 AND location_id = 'WH-2' RETURNING version`, [sku])
        .finally(() => (done = true));
      // Probe, not a pause: Postgres reports a session blocked by the first transaction.
      await waitUntil(
        async () => (await pool.query(`SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, [firstPid])).rowCount! > 0 || done,
        10_000,
        'the second update to wait for the first transaction',
      );
      expect(done).toBe(false); // the other location of the same SKU waits for the first commit
      await first.query('COMMIT');
      const b = await second;
      expect(Number(b.rows[0]!.version)).toBeGreaterThan(Number(a.rows[0]!.version));
    } finally {
      first.release();
    }
    // Another SKU is not held up by an open transaction on this one.
    const other = newSku('cdc-ord');
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 1)`, [other]);
  });

  it('one transaction may write tens of thousands of SKUs (an ERP batch)', async () => {
    // Per-SKU serialisation must not exhaust Postgres' shared lock table (migration 0006).
    const prefix = unique('batch');
    createdPrefixes.push(prefix);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const res = await client.query(
        `INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1 || '-' || n, 'WH-1', 1 FROM generate_series(1, 30000) n`,
        [prefix],
      );
      expect(res.rowCount).toBe(30000);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
