/** The stack reports itself healthy, migrations are safe to run twice, and the CDC warm-up touches no stock. */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../lib/errors.ts';
import { loadMigrations, migrate } from '../lib/migrate.ts';
import { isRunning } from '../tools/stack/connectors.ts';
import { stackStatus } from '../tools/stack/stack.ts';
import { warmCdcPath } from '../tools/stack/warm-cdc.ts';
import { testConfig } from './helpers.ts';

const config = testConfig();

describe('stack', () => {
  it('status shows every component healthy and every connector RUNNING', async () => {
    const status = await stackStatus(config);
    const unhealthy = status.components.filter((c) => !c.healthy).map((c) => `${c.name}: ${c.detail}`);
    expect(unhealthy).toEqual([]);
    expect(status.connectors.map((c) => c.name).sort()).toEqual(['invsync-outbox', 'invsync-stock-cdc']);
    expect(status.connectors.every(isRunning)).toBe(true);
    expect(status.healthy).toBe(true);
  });

  it('migrations are safe to run twice and refuse an edited, already-applied file', async () => {
    const all = loadMigrations();
    const again = await migrate(config.pg.url);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual(all.map((m) => m.version));
    const edited = all.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited`, checksum: 'different' } : m));
    await expect(migrate(config.pg.url, { migrations: edited })).rejects.toBeInstanceOf(MigrationError);
  });

  it('the CDC warm-up goes through the connector to its own topic and changes no stock row', async () => {
    const pool = new pg.Pool({ connectionString: config.pg.url, max: 1 });
    try {
      const fingerprint = async () => (await pool.query<{ f: string }>(`SELECT count(*) || ':' || coalesce(sum(version), 0) AS f FROM stock_levels`)).rows[0]!.f;
      const movements = async () => (await pool.query<{ n: string }>('SELECT count(*) AS n FROM stock_movements')).rows[0]!.n;
      const before = { rows: await fingerprint(), movements: await movements() };
      const lines: string[] = [];
      // A burst forced by an impossible threshold, then bounded by maxMs: the probes must still
      // have come back through Debezium (a latency each), and stock must be untouched.
      const res = await warmCdcPath(config, (l) => lines.push(l), { thresholdMs: -1, probes: 3, burst: 2500, maxMs: 8000 });
      expect(res.warm).toBe(false);
      expect(res.rounds).toBeGreaterThanOrEqual(1);
      expect(res.events).toBeGreaterThanOrEqual(3);
      expect(res.lastProbesMs.length).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/warming the CDC path/);
      const warm = await warmCdcPath(config, () => undefined, { probes: 3, maxMs: 20_000 });
      expect(warm.lastProbesMs).toHaveLength(3);
      expect({ rows: await fingerprint(), movements: await movements() }).toEqual(before);
    } finally {
      await pool.end();
    }
  });
});
