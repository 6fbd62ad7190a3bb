/**
 * `npm run views -- reconcile` finds drift between Redis and Postgres and `--repair` fixes it;
 * `rebuild` restores lost views. Run as a user would, on a private Redis prefix and SKU prefix.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { createRedis } from '../lib/redis.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { encodeRow } from '../stream-processors/domain/fold.ts';
import { testConfig, unique } from './helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 2 });
const redis = createRedis(config.redis);

afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

function views(args: string[], prefix: string) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'stream-processors', 'views-cli.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, REDIS_PREFIX: prefix },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('views command', () => {
  it('rebuild restores every view; reconcile reports drift; --repair fixes it', async () => {
    const prefix = unique('v').replaceAll('-', '');
    const skuPrefix = unique('VIEWS');
    const v = new RedisViews({ redis, prefix });
    await pool.query(
      `INSERT INTO stock_levels (sku, location_id, on_hand, reserved) SELECT $1 || '-' || n, 'WH-' || l, 10 + n, 1
       FROM generate_series(1, 20) n, generate_series(1, 2) l`,
      [skuPrefix],
    );

    const rebuild = views(['rebuild', '--sku-prefix', skuPrefix, '--json'], prefix);
    expect(rebuild.code).toBe(0);
    expect(JSON.parse(rebuild.stdout)).toMatchObject({ rows: 40, applied: 40, removed: 0 });
    expect((await v.readSummary(`${skuPrefix}-3`)).available).toBe(String(2 * (13 - 1)));

    const clean = views(['reconcile', '--sku-prefix', skuPrefix], prefix);
    expect(clean.code).toBe(0);
    expect(clean.stderr).toMatch(/40 rows checked .* drift: 0/);

    // Corrupt: a wrong quantity at the same version, a lost row, a row Postgres never had.
    const rows = (await v.readRows([`${skuPrefix}-1`])).get(`${skuPrefix}-1`)!;
    await redis.hset(v.keys.rows(`${skuPrefix}-1`), 'WH-1', encodeRow({ ...rows['WH-1']!, onHand: 999 }));
    await redis.hdel(v.keys.rows(`${skuPrefix}-2`), 'WH-2');
    await redis.hset(v.keys.rows(`${skuPrefix}-ghost`), 'WH-1', encodeRow({ onHand: 5, reserved: 0, safetyStock: 0, version: 1, deleted: false, commitTs: 0 }));

    const drift = views(['reconcile', '--sku-prefix', skuPrefix], prefix);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(new RegExp(`mismatch\\s+${skuPrefix}-1@WH-1`));
    expect(drift.stdout).toMatch(new RegExp(`missing_in_redis\\s+${skuPrefix}-2@WH-2`));
    expect(drift.stdout).toMatch(new RegExp(`missing_in_postgres\\s+${skuPrefix}-ghost@WH-1`));
    expect(drift.stdout).toContain('run with --repair to fix');

    const repair = views(['reconcile', '--repair', '--sku-prefix', skuPrefix], prefix);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain('repaired 3 row(s)');

    const after = views(['reconcile', '--sku-prefix', skuPrefix, '--json'], prefix);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ driftCount: 0 });
    expect((await v.readRows([`${skuPrefix}-1`])).get(`${skuPrefix}-1`)!['WH-1']!.onHand).toBe(11);
  });

  it('refuses unknown arguments with usage (exit 2)', () => {
    const res = views(['reconcile', '--frobnicate'], 'inv');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('usage: npm run views --');
  });
});
