/** The stack reports itself healthy, and migrations are safe to run twice. */
import { describe, expect, it } from 'vitest';
import { MigrationError } from '../lib/errors.ts';
import { loadMigrations, migrate } from '../lib/migrate.ts';
import { isRunning } from '../tools/stack/connectors.ts';
import { stackStatus } from '../tools/stack/stack.ts';
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
});
