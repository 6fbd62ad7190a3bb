/**
 * Driver errors classified at the edge (lib/driver-errors.ts), against the real Postgres and
 * Redis: what the drivers actually throw is what the classifiers are fed. Nothing is stopped; an
 * unreachable server is a free port nobody listens on.
 */
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { AdjustmentStore } from '../connectors/inbound/adapters/pg-adjustments.ts';
import { fromPgError, fromRedisError } from '../lib/driver-errors.ts';
import { ContentionError, InternalError, InvalidDataError, isRetriable, UnavailableError } from '../lib/errors.ts';
import { createPgPool } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { freePort } from '../tools/stack/proc.ts';
import { testConfig } from './helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 2 });
const redis = createRedis(config.redis);

afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

async function pgFailure(sql: string): Promise<unknown> {
  return pool.query(sql).then(
    () => expect.unreachable(`${sql} succeeded`),
    (err: unknown) => err,
  );
}

describe('Postgres errors, classified', () => {
  it('a data exception (22P02) and a check violation (23514) are invalid_data, not retriable', async () => {
    const cast = fromPgError(await pgFailure(`SELECT 'x'::int`));
    expect(cast).toBeInstanceOf(InvalidDataError);
    expect((cast as InvalidDataError).sqlState).toBe('22P02');
    expect(isRetriable(cast)).toBe(false);
    const check = fromPgError(await pgFailure(`DO $$ BEGIN RAISE EXCEPTION 'guard' USING ERRCODE = 'check_violation'; END $$`));
    expect(check).toBeInstanceOf(InvalidDataError);
    expect((check as InvalidDataError).sqlState).toBe('23514');
  });

  it('a serialization failure raised by the server is contention, retriable', async () => {
    const e = fromPgError(await pgFailure(`DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$`));
    expect(e).toBeInstanceOf(ContentionError);
    expect(isRetriable(e)).toBe(true);
  });

  it('a bad statement is internal, not retriable', async () => {
    const e = fromPgError(await pgFailure(`SELECT * FROM no_such_table_${Date.now()}`));
    expect(e).toBeInstanceOf(InternalError);
    expect(isRetriable(e)).toBe(false);
  });

  it('the adjustment store answers a Postgres nobody listens on with unavailable', async () => {
    const port = await freePort();
    const dead = createPgPool(`postgres://nobody@127.0.0.1:${port}/none`, { max: 1 });
    try {
      const store = new AdjustmentStore({ pool: dead });
      const adjustment = { adjustmentId: 'a-1', sku: 'S', locationId: 'WH-1', toLocationId: null, kind: 'RECEIPT', quantity: 1, occurredAt: Date.now(), sourceSystem: 'test', reference: null };
      const err = await store.apply([{ adjustment: adjustment as never, via: 'test' }]).then(
        () => expect.unreachable('applied without Postgres'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnavailableError);
      expect(isRetriable(err)).toBe(true);
    } finally {
      await dead.end();
    }
  });
});

describe('Redis errors, classified', () => {
  it('a wrong-type reply is internal; a closed connection is unavailable', async () => {
    const key = `errors-test:${Date.now()}`;
    await redis.set(key, 'v', 'EX', 30);
    const wrong = await redis.hget(key, 'f').then(
      () => expect.unreachable('HGET on a string succeeded'),
      (e: unknown) => e,
    );
    expect(fromRedisError(wrong)).toBeInstanceOf(InternalError);
    await redis.del(key);

    const port = await freePort();
    const dead = createRedis(`redis://127.0.0.1:${port}`);
    dead.on('error', () => undefined); // the connection errors themselves are expected
    try {
      const err = await dead.get('k').then(
        () => expect.unreachable('GET without Redis'),
        (e: unknown) => e,
      );
      const e = fromRedisError(err);
      expect(e).toBeInstanceOf(UnavailableError);
      expect(isRetriable(e)).toBe(true);
    } finally {
      dead.disconnect();
    }
  });
});
