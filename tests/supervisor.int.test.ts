/**
 * The platform under its supervisor, with the real entry points (processor, gateway,
 * connectors) as child processes against the real services:
 *   - SIGKILL of the gateway: it is restarted (new pid, crash and restart counted) while the
 *     processor and the connectors keep their pids and keep serving (the processor folds a
 *     change made while the gateway is down);
 *   - `npm start` (tools/cli/start.ts) prints the table with each child's pid and state, never
 *     prints the Redis password, and on Ctrl-C (SIGINT) stops every child and exits 0.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../lib/config.ts';
import { createRedis } from '../lib/redis.ts';
import { Supervisor, tsChild, type SupervisorEvent } from '../lib/supervisor.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { cleanUp, unique, type Leftovers } from './helpers.ts';
import { freePort, httpStatus, isAlive, killAll, startChild, waitFor } from './process-helpers.ts';

const base = loadConfig(process.env);
const pool = new pg.Pool({ connectionString: base.pg.url, max: 2 });
const supervisors: Supervisor[] = [];

/** The private platforms' names (removed in afterAll). */
const left = { redisPrefixes: [] as string[], skuPrefixes: [] as string[], groups: [] as string[] } satisfies Leftovers;

afterAll(async () => {
  await Promise.all(supervisors.map((s) => s.stop('SIGKILL')));
  await killAll();
  await pool.end();
  await cleanUp(base, left);
});

/** Environment for a private platform: own Redis prefix, consumer groups and ports. */
async function platformEnv(prefix: string): Promise<Record<string, string>> {
  const groups = { processor: unique('sv-proc'), inbound: unique('sv-conn') };
  left.redisPrefixes.push(prefix);
  left.skuPrefixes.push(prefix);
  left.groups.push(groups.processor, groups.inbound);
  return {
    REDIS_PREFIX: prefix,
    GATEWAY_PORT: String(await freePort()),
    PROCESSOR_METRICS_PORT: String(await freePort()),
    CONNECTOR_METRICS_PORT: String(await freePort()),
    PROCESSOR_GROUP_ID: groups.processor,
    PROCESSOR_START_FROM: 'latest',
    PROCESSOR_RECONCILE_INTERVAL_S: '0',
    CONNECTOR_INBOUND_GROUP_ID: groups.inbound,
    CONNECTOR_INBOUND_START_FROM: 'latest',
    HOUSEKEEPING_INTERVAL_S: '0',
    PURCHASE_EXPIRY_INTERVAL_MS: '0',
  };
}

describe('supervised platform', () => {
  it('a SIGKILLed gateway is restarted while the processor and the connectors keep serving', async () => {
    const prefix = unique('sv').replaceAll('-', '');
    const env = await platformEnv(prefix);
    const childEnv = { ...process.env, ...env };
    const events: SupervisorEvent[] = [];
    const s = new Supervisor({
      children: ['stream-processors/main.ts', 'gateway/main.ts', 'connectors/main.ts'].map((f, i) =>
        tsChild(['processor', 'gateway', 'connectors'][i]!, `${PROJECT_ROOT}/${f}`, { cwd: PROJECT_ROOT, env: childEnv }),
      ),
      backoff: { initialMs: 200, maxMs: 2000, stableMs: 60_000 },
      graceMs: 20_000,
      maxStartFailures: 3,
    });
    supervisors.push(s);
    s.on('event', (e) => events.push(e));
    // As `npm start` does: the processor first, the others once it is ready.
    s.start(['processor']);
    await s.waitReady('processor');
    expect(s.status().filter((c) => c.name !== 'processor').map((c) => [c.name, c.state, c.pid])).toEqual([
      ['gateway', 'stopped', null],
      ['connectors', 'stopped', null],
    ]);
    s.start();
    await Promise.all(['processor', 'gateway', 'connectors'].map((n) => s.waitReady(n)));
    const before = Object.fromEntries(s.status().map((c) => [c.name, c]));
    const gatewayUrl = String(before.gateway!.info.url);
    expect(await httpStatus(`${gatewayUrl}/healthz`)).toBe(200);

    s.kill('gateway', 'SIGKILL');
    await waitFor(() => events.some((e) => e.type === 'exited' && e.child.name === 'gateway'), 'the gateway exit');
    // While the gateway is down, the others serve: readiness green, and a change is folded.
    expect(await httpStatus(`http://127.0.0.1:${env.PROCESSOR_METRICS_PORT}/readyz`)).toBe(200);
    expect(await httpStatus(`http://127.0.0.1:${env.CONNECTOR_METRICS_PORT}/readyz`)).toBe(200);
    const sku = `${prefix}-SKU`;
    const redis = createRedis(base.redis);
    const views = new RedisViews({ redis, prefix });
    try {
      await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 7)`, [sku]);
      await waitFor(async () => (await views.readRows([sku])).has(sku), 'the processor to fold a change made while the gateway is down');
    } finally {
      redis.disconnect();
    }

    await s.waitReady('gateway');
    const after = Object.fromEntries(s.status().map((c) => [c.name, c]));
    expect(after.gateway).toMatchObject({ state: 'running', crashes: 1, restarts: 1 });
    expect(after.gateway!.pid).not.toBe(before.gateway!.pid);
    expect(after.gateway!.lastExit?.signal).toBe('SIGKILL');
    for (const n of ['processor', 'connectors']) expect(after[n]).toMatchObject({ pid: before[n]!.pid, crashes: 0, restarts: 0, state: 'running' });
    expect(await httpStatus(`${gatewayUrl}/healthz`)).toBe(200);
    const stock = await fetch(`${gatewayUrl}/v1/stock/${encodeURIComponent(sku)}`);
    expect(stock.status).toBe(200);

    const pids = s.status().map((c) => c.pid!);
    await s.stop();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    const stops = events.filter((e): e is Extract<SupervisorEvent, { type: 'exited' }> => e.type === 'exited' && e.expected);
    expect(stops.map((e) => [e.child.name, e.code])).toEqual(expect.arrayContaining([['processor', 0], ['gateway', 0], ['connectors', 0]]));
  }, 300_000);

  it('npm start: a table of supervised processes with pids, no password printed, Ctrl-C stops them all and exits 0', async () => {
    const prefix = unique('st').replaceAll('-', '');
    const redisUrl = new URL(base.redis.url);
    // A password to look for in the output (a Redis without one accepts and ignores it).
    if (!redisUrl.password) redisUrl.password = 'redact-me-please';
    const password = decodeURIComponent(redisUrl.password);
    const start = startChild('tools/cli/start.ts', { env: { ...(await platformEnv(prefix)), REDIS_URL: redisUrl.toString() } });
    await start.waitForLine(/^live: Redis views/, 240_000);
    const table = new Map<string, { pid: number; state: string }>();
    for (const line of start.lines) {
      const m = /^\s+(processor|gateway|connectors)\s+(\d+)\s+(\w+)\s+(\d+)\s+(\d+)/.exec(line);
      if (m) table.set(m[1]!, { pid: Number(m[2]), state: m[3]! });
    }
    expect([...table.keys()].sort()).toEqual(['connectors', 'gateway', 'processor']);
    for (const row of table.values()) {
      expect(row.state).toBe('running');
      expect(isAlive(row.pid)).toBe(true);
    }
    expect(start.lines.some((l) => l.includes('redis-cli -u'))).toBe(true);
    start.signal('SIGINT');
    expect(await start.exited).toEqual({ code: 0, signal: null });
    for (const row of table.values()) expect(isAlive(row.pid)).toBe(false);
    expect(start.lines.join('\n')).not.toContain(password);
  }, 300_000);
});
