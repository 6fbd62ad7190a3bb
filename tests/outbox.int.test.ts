/**
 * The transactional outbox: a row inserted into `outbox` is published by Debezium's outbox event
 * router to `<aggregatetype>.events`, keyed by aggregate id, with the event id and type as headers.
 * Rolled-back outbox rows are never published.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { outboxTopic } from '../lib/topics.ts';
import { testConfig, testKafka, unique, watchTopic } from './helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 2 });
const kafka = testKafka(config);

afterAll(async () => {
  await pool.end();
});

describe('outbox event router', () => {
  it('routes an outbox insert to its topic with id, key, type and payload; skips a rolled-back one', async () => {
    // A unique aggregate type per run keeps test events off the real orders.events topic.
    const aggregateType = unique('t').replaceAll('-', '_');
    const topic = outboxTopic(aggregateType);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const watcher = await watchTopic(kafka, topic, { fromBeginning: true });
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ($1, 'order-rolled-back', 'OrderPlaced', '{"n": 0}')`,
          [aggregateType],
        );
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      const { rows } = await pool.query<{ id: string }>(
        `INSERT INTO outbox (aggregatetype, aggregateid, type, payload)
         VALUES ($1, 'order-42', 'OrderPlaced', '{"orderId": "order-42", "items": [{"sku": "SKU-1", "qty": 2}]}')
         RETURNING id`,
        [aggregateType],
      );
      const id = rows[0]!.id;
      const msg = await watcher.waitFor((m) => m.headers.id === id);
      expect(msg.key).toBe('order-42');
      expect(msg.headers.eventType).toBe('OrderPlaced');
      expect(JSON.parse(msg.value!)).toEqual({ orderId: 'order-42', items: [{ sku: 'SKU-1', qty: 2 }] });
      expect(watcher.messages.map((m) => m.key)).toEqual(['order-42']);
    } finally {
      await watcher.stop();
    }
  });
});
