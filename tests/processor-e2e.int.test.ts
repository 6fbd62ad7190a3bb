/**
 * The stock processor end to end on the real pipeline: Postgres -> Debezium -> Kafka -> processor
 * -> Redis. Each test uses its own SKU prefix, Redis key prefix and consumer group, and starts its
 * processors at the topic's end (a probe write proves they are live before traffic starts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { createRedis } from '../lib/redis.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { rebuildViews } from '../stream-processors/views-maintenance.ts';
import { cleanUp, testConfig, testKafka, unique, type Leftovers } from './helpers.ts';
import { startTestProcessor, waitConverged, waitProcessorLive, waitUntil } from './processor-helpers.ts';

const config = testConfig();
const pool = new pg.Pool({ connectionString: config.pg.url, max: 12 });
const redis = createRedis(config.redis);
const kafka = testKafka(config);

/** What the tests create on the shared stack, removed afterwards. */
const left = { redisPrefixes: [] as string[], skuPrefixes: [] as string[], groups: [] as string[] } satisfies Leftovers;

afterAll(async () => {
  await pool.end();
  redis.disconnect();
  await cleanUp(config, left);
});

async function seedSkus(skuPrefix: string, count: number): Promise<string[]> {
  const skus = Array.from({ length: count }, (_, i) => `${skuPrefix}-${String(i).padStart(4, '0')}`);
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand, safety_stock)
     SELECT s, 'WH-' || l, 20, 1 FROM unnest($1::text[]) AS s, generate_series(1, 3) AS l`,
    [skus],
  );
  return skus;
}

/** `count` random single-row updates, `parallel` at a time. */
async function traffic(skus: string[], count: number, parallel = 8, onProgress?: (done: number) => void): Promise<void> {
  let done = 0;
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const worker = async () => {
    while (done < count) {
      done++;
      const sku = skus[Math.floor(rnd() * skus.length)]!;
      const loc = `WH-${1 + Math.floor(rnd() * 3)}`;
      await pool.query(`UPDATE stock_levels SET on_hand = $3, reserved = $4 WHERE sku = $1 AND location_id = $2`, [
        sku,
        loc,
        Math.floor(rnd() * 100),
        Math.floor(rnd() * 5),
      ]);
      onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

function spawnProcessor(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'stream-processors', 'main.ts')], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', PROCESSOR_METRICS_PORT: '0', PROCESSOR_RECONCILE_INTERVAL_S: '0', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('stock processor on the real pipeline', () => {
  it('converges to Postgres after a SIGKILL while consuming, and a restart', async () => {
    const prefix = unique('k').replaceAll('-', '');
    left.redisPrefixes.push(prefix);
    const skuPrefix = unique('KILL');
    left.skuPrefixes.push(skuPrefix);
    const views = new RedisViews({ redis, prefix });
    const env = { REDIS_PREFIX: prefix, PROCESSOR_GROUP_ID: unique('grp'), PROCESSOR_START_FROM: 'latest' };
    left.groups.push(env.PROCESSOR_GROUP_ID);
    const skus = await seedSkus(skuPrefix, 60);
    let child = spawnProcessor(env);
    try {
      await waitProcessorLive(pool, views, `${skuPrefix}-probe`, 60_000);
      let killedAt = -1;
      let appliedBeforeKill = 0;
      await traffic(skus, 3000, 8, (done) => {
        if (done === 1200 && killedAt < 0) {
          killedAt = done;
          child.kill('SIGKILL');
        }
      });
      expect(killedAt).toBe(1200);
      for await (const page of views.scanSkus()) appliedBeforeKill += page.filter((s) => s.startsWith(skuPrefix)).length;
      expect(appliedBeforeKill).toBeGreaterThan(1); // it was folding when it died
      child = spawnProcessor(env); // same group: resumes from the last committed offsets
      await waitConverged(pool, views, skuPrefix, 90_000);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('two instances in one group share the partitions and still converge', async () => {
    const prefix = unique('g').replaceAll('-', '');
    left.redisPrefixes.push(prefix);
    const skuPrefix = unique('PAIR');
    left.skuPrefixes.push(skuPrefix);
    const groupId = unique('grp');
    const skus = await seedSkus(skuPrefix, 60);
    const a = await startTestProcessor({ config, kafka, redis, prefix, groupId, fromBeginning: false });
    const b = await startTestProcessor({ config, kafka, redis, prefix, groupId, fromBeginning: false });
    try {
      await waitUntil(
        async () => {
          const pa = a.processor.partitions();
          const pb = b.processor.partitions();
          return pa.length > 0 && pb.length > 0 && new Set([...pa, ...pb]).size === pa.length + pb.length && pa.length + pb.length === 6;
        },
        30_000,
        'both instances to hold disjoint partitions covering the topic',
      );
      await waitProcessorLive(pool, a.views, `${skuPrefix}-probe`);
      await traffic(skus, 1500);
      await waitConverged(pool, a.views, skuPrefix, 60_000);
      const applied = (p: typeof a) => p.metrics.events.get().then((m) => m.values.find((v) => v.labels.outcome === 'applied')?.value ?? 0);
      expect(await applied(a)).toBeGreaterThan(0);
      expect(await applied(b)).toBeGreaterThan(0);
    } finally {
      await a.processor.stop();
      await b.processor.stop();
    }
  });

  it('a rebuild during live traffic ends equal to Postgres, and no view version goes backwards', async () => {
    const prefix = unique('r').replaceAll('-', '');
    left.redisPrefixes.push(prefix);
    const skuPrefix = unique('REB');
    left.skuPrefixes.push(skuPrefix);
    // Rows written before the processor starts (at the topic's end) exist only in Postgres:
    // without the rebuild, the views could not converge.
    const skus = await seedSkus(skuPrefix, 400);
    const proc = await startTestProcessor({ config, kafka, redis, prefix, groupId: unique('grp'), fromBeginning: false });
    const views = proc.views;
    let monitoring = true;
    const backwards: string[] = [];
    const watched = skus.slice(0, 25);
    const monitor = (async () => {
      const last = new Map<string, number>();
      while (monitoring) {
        const p = redis.pipeline();
        for (const s of watched) p.hget(views.keys.summary(s), 'version');
        const versions = ((await p.exec()) ?? []).map(([, v]) => (v === null ? 0 : Number(v)));
        versions.forEach((v, i) => {
          const sku = watched[i]!;
          if (v < (last.get(sku) ?? 0)) backwards.push(`${sku}: ${last.get(sku)} -> ${v}`);
          last.set(sku, Math.max(v, last.get(sku) ?? 0));
        });
        await sleep(5);
      }
    })();
    try {
      await waitProcessorLive(pool, views, `${skuPrefix}-probe`);
      const live = traffic(skus, 2500, 6);
      await sleep(200);
      const result = await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix });
      await live;
      expect(result.rows).toBeGreaterThanOrEqual(1200);
      expect(result.applied).toBeGreaterThan(0);
      await waitConverged(pool, views, skuPrefix, 60_000);
    } finally {
      monitoring = false;
      await monitor;
      await proc.processor.stop();
    }
    expect(backwards).toEqual([]);
  });

  it('keeps folding when stock_levels gains a new nullable column, without a restart', async () => {
    const prefix = unique('c').replaceAll('-', '');
    left.redisPrefixes.push(prefix);
    const skuPrefix = unique('COL');
    left.skuPrefixes.push(skuPrefix);
    const column = `ext_${unique('c').replaceAll('-', '_')}`;
    const [sku] = await seedSkus(skuPrefix, 1);
    const proc = await startTestProcessor({ config, kafka, redis, prefix, groupId: unique('grp'), fromBeginning: false });
    try {
      await waitProcessorLive(pool, proc.views, `${skuPrefix}-probe`);
      await pool.query(`ALTER TABLE stock_levels ADD COLUMN ${column} text NULL`);
      await pool.query(`UPDATE stock_levels SET on_hand = 77, ${column} = 'from the ERP' WHERE sku = $1 AND location_id = 'WH-2'`, [sku]);
      await waitUntil(async () => (await proc.views.readRows([sku!])).get(sku!)?.['WH-2']?.onHand === 77, 30_000, 'the update after the new column');
      expect(await proc.metrics.events.get().then((m) => m.values.find((v) => v.labels.outcome === 'dlq')?.value ?? 0)).toBe(0);
    } finally {
      await pool.query(`ALTER TABLE stock_levels DROP COLUMN IF EXISTS ${column}`);
      await proc.processor.stop();
    }
  });
});
