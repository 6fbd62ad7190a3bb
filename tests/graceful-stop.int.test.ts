/**
 * Graceful stop on SIGTERM, against real processes (docs/operations.md, "Graceful stop"):
 * a gateway child holding a purchase in flight (its write-back waits on a row lock the test
 * holds) and a WebSocket subscriber. After SIGTERM: /readyz turns 503 first, the subscriber is
 * closed with 1001 (reconnect) while the purchase is still in flight, no new connection is
 * accepted, the purchase completes with its 201 once the lock goes, the order is in Postgres, and
 * the process exits 0. The processor and the connectors drain and exit 0 as well.
 */
import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HttpDrain } from '../gateway/drain.ts';
import { loadConfig } from '../lib/config.ts';
import { createRedis } from '../lib/redis.ts';
import { Gate } from '../purchase/adapters/gate.ts';
import { cleanUp, testKafka, unique } from './helpers.ts';
import { freePort, httpStatus, killAll, startChild, waitFor } from './process-helpers.ts';
import { startTestProcessor, waitProcessorLive, type TestProcessor } from './processor-helpers.ts';
import { IDENTITY_ENV, purchase } from './purchase-helpers.ts';

const prefix = unique('drain').replaceAll('-', '');
const config = loadConfig({ ...process.env, REDIS_PREFIX: prefix });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const gate = new Gate({ redis, prefix });
let proc: TestProcessor;

beforeAll(async () => {
  proc = await startTestProcessor({ config, kafka: testKafka(config), redis, prefix, groupId: unique('grp'), fromBeginning: false });
  await waitProcessorLive(pool, proc.views, `${prefix}-probe`);
});

/** Consumer groups of the children started here (removed in afterAll with the prefix and rows). */
const groups: string[] = [];

afterAll(async () => {
  await killAll();
  await proc?.processor.stop();
  redis.disconnect();
  await pool.end();
  await cleanUp(config, { redisPrefixes: [prefix], skuPrefixes: [prefix], groups });
});

describe('graceful stop', () => {
  it('gateway: readiness red first, sockets closed with 1001, the in-flight purchase completes, exit 0', async () => {
    const sku = `${prefix}-SKU`;
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 10)`, [sku]);
    await waitFor(async () => (await gate.state(sku)).available === 10, `${sku} in the gate`);

    const port = await freePort();
    const gw = startChild('gateway/main.ts', {
      env: { ...IDENTITY_ENV, GATEWAY_METRICS_PORT: '0', REDIS_PREFIX: prefix, GATEWAY_PORT: String(port), SHUTDOWN_READINESS_DELAY_MS: '1500', SHUTDOWN_DRAIN_TIMEOUT_MS: '30000', PURCHASE_EXPIRY_INTERVAL_MS: '0' },
    });
    const info = await gw.ready;
    const base = String(info.url);
    expect(await httpStatus(`${base}/readyz`)).toBe(200);

    // A subscriber, with its snapshot received.
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/stream?channel=storefront`);
    const frames: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>));
    const closed = new Promise<{ code: number; at: number }>((r) => ws.on('close', (code) => r({ code, at: Date.now() })));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ op: 'subscribe', skus: [sku] }));
    await waitFor(() => frames.some((f) => f.type === 'snapshot'), 'the snapshot');

    // A purchase whose write-back waits on our row lock: in flight until we let go.
    const lock = await pool.connect();
    let bought: Awaited<ReturnType<typeof purchase>> | undefined;
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT * FROM stock_levels WHERE sku = $1 FOR UPDATE', [sku]);
      const buying = purchase(base, unique('key'), 'drain-customer', [{ sku, qty: 2 }]).then((r) => {
        bought = r;
        return r;
      });
      await waitFor(async () => {
        const { rows } = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'invsync-gateway' AND wait_event_type = 'Lock' AND pid IN (SELECT pid FROM pg_locks WHERE NOT granted)`,
        );
        return Number(rows[0]!.n) > 0;
      }, 'the write-back to wait on the lock');

      gw.signal('SIGTERM');
      // 1. Readiness red while the gateway still answers.
      await waitFor(async () => (await httpStatus(`${base}/readyz`)) === 503, '/readyz to answer 503');
      // 2. The subscriber is told to reconnect elsewhere; the purchase is still waiting.
      const close = await closed;
      expect(close.code).toBe(1001);
      expect(bought).toBeUndefined();
      // 3. No new connections.
      await waitFor(async () => (await httpStatus(`${base}/healthz`)) === 0, 'new connections to be refused');
      expect(bought).toBeUndefined();
      await lock.query('COMMIT');
      const reply = await buying;
      expect(reply.status).toBe(201);
      const orderId = String(reply.body.orderId);
      const { rows } = await pool.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [orderId]);
      expect(rows[0]?.status).toBe('reserved');
    } finally {
      await lock.query('ROLLBACK').catch(() => undefined);
      lock.release();
      ws.terminate();
    }
    expect(await gw.exited).toEqual({ code: 0, signal: null });
  }, 240_000);

  it('processor and connectors: readiness red, current batch committed, exit 0', async () => {
    const [pPort, cPort] = [await freePort(), await freePort()];
    const env = {
      REDIS_PREFIX: prefix,
      PROCESSOR_GROUP_ID: unique('drain-proc'),
      PROCESSOR_START_FROM: 'latest',
      PROCESSOR_METRICS_PORT: String(pPort),
      PROCESSOR_RECONCILE_INTERVAL_S: '0',
      CONNECTOR_INBOUND_GROUP_ID: unique('drain-conn'),
      CONNECTOR_INBOUND_START_FROM: 'latest',
      CONNECTOR_METRICS_PORT: String(cPort),
      HOUSEKEEPING_INTERVAL_S: '0',
    };
    groups.push(env.PROCESSOR_GROUP_ID, env.CONNECTOR_INBOUND_GROUP_ID);
    const p = startChild('stream-processors/main.ts', { env });
    const c = startChild('connectors/main.ts', { env });
    await Promise.all([p.ready, c.ready]);
    expect(await httpStatus(`http://127.0.0.1:${pPort}/readyz`)).toBe(200);
    expect(await httpStatus(`http://127.0.0.1:${cPort}/readyz`)).toBe(200);
    p.signal('SIGTERM');
    c.signal('SIGTERM');
    const [pe, ce] = await Promise.all([p.exited, c.exited]);
    expect(pe).toEqual({ code: 0, signal: null });
    expect(ce).toEqual({ code: 0, signal: null });
    for (const child of [p, c]) expect(child.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  }, 240_000);

  it('HttpDrain: while refusing, a request on an open keep-alive connection gets 503 shutting_down and the connection closes; event streams are ended', async () => {
    const drain = new HttpDrain();
    const server = http.createServer(
      drain.track((req, res) => {
        if (req.url === '/events') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('event: hello\ndata: {}\n\n');
          return;
        }
        res.end('ok');
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        }).on('error', reject);
      });
    try {
      expect((await get('/')).status).toBe(200);
      const stream = get('/events');
      await waitFor(() => drain.inFlight === 1, 'the event stream to be open');
      drain.phase = 'refusing';
      drain.endStreams();
      expect((await stream).body).toContain('event: hello');
      expect(await drain.idle(5000)).toBe(true);
      const refused = await get('/');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.headers.connection).toBe('close');
      expect(JSON.parse(refused.body)).toMatchObject({ error: 'shutting_down' });
    } finally {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
