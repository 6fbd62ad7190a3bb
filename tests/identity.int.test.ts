/**
 * Issue 10, identity slice, against a real gateway (in-process, real Redis and Postgres): every
 * finding as an attack that worked on main and must fail now.
 *   2  orders have no owner            4  customers are never authenticated
 *   3  waiting-room tickets leak        5  hot SKUs skip rate limits and fill Redis
 *   6  HTTP leaks per-location figures 10  tokens: exp, iss/aud, WebSocket expiry
 *  11  a NUL in customerId is a 503
 * Views are built from Postgres with rebuildViews (no processor needed: nothing here waits for CDC).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createRedis } from '../lib/redis.ts';
import { startGatewayService, type GatewayService } from '../gateway/service.ts';
import { Gate } from '../purchase/adapters/gate.ts';
import { RedisViews } from '../stream-processors/adapters/redis-views.ts';
import { markEpoch } from '../stream-processors/epoch.ts';
import { rebuildViews } from '../stream-processors/views-maintenance.ts';
import { unique } from './helpers.ts';
import { as, customerToken, get, IDENTITY_ENV, post, purchase, TEST_JWT_SECRET, type HttpReply } from './purchase-helpers.ts';

const skuPrefix = unique('IDN');
const hotSku = `${skuPrefix}-hot`;
const floodSku = `${skuPrefix}-flood`;
const prefix = unique('idn').replaceAll('-', '').slice(0, 32);
const base = {
  ...process.env,
  ...IDENTITY_ENV,
  REDIS_PREFIX: prefix,
  PURCHASE_EXPIRY_INTERVAL_MS: '0',
  PURCHASE_MAX_PER_CUSTOMER: '0',
  PURCHASE_HOT_SKUS: `${hotSku},${floodSku}`,
  PURCHASE_WAITING_ROOM_FACTOR: '1',
};
/** Rate limits off except where a test turns them on: these tests are about identity. */
const config = loadConfig({ ...base, PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0' });
/** The production-like limits for the hot-SKU flood. */
const limited = loadConfig({ ...base, PURCHASE_RATE_CUSTOMER_PER_SEC: '5', PURCHASE_RATE_CUSTOMER_BURST: '10' });
const pool = new pg.Pool({ connectionString: config.pg.url, max: 4 });
const redis = createRedis(config.redis);
const views = new RedisViews({ redis, prefix });
const gate = new Gate({ redis, prefix });
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let gw: GatewayService;
let gwLimited: GatewayService;
const sockets: WebSocket[] = [];

async function stock(suffix: string, units: number[]): Promise<string> {
  const sku = `${skuPrefix}-${suffix}`;
  await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) SELECT $1, 'WH-' || i, q FROM unnest($2::int[]) WITH ORDINALITY AS t(q, i)`, [sku, units]);
  await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix: sku });
  return sku;
}

const buy = (key: string, body: unknown, headers: Record<string, string> = {}) => post(gw.url, '/v1/purchases', body, { 'Idempotency-Key': key, ...headers });

beforeAll(async () => {
  await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 1), ($2, 'WH-1', 3)`, [hotSku, floodSku]);
  await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix });
  await markEpoch(redis, prefix); // the prefix is private to this file: built as far as it needs
  gw = await startGatewayService(config, logger, { port: 0, metricsDefaults: false });
  gwLimited = await startGatewayService(limited, logger, { port: 0, metricsDefaults: false });
});

afterAll(async () => {
  for (const s of sockets) s.terminate();
  await gw?.stop();
  await gwLimited?.stop();
  await pool.end();
  redis.disconnect();
});

describe('finding 4: the customer is the credential, never the body', () => {
  it('no credential: 401 with JSON and WWW-Authenticate; a bad token: 401; nothing is reserved', async () => {
    const sku = await stock('anon', [5]);
    const none = await buy(randomUUID(), { customerId: 'alice', items: [{ sku, qty: 1 }] });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: 'unauthorized', message: expect.any(String) });
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(40)));
    expect((await buy(randomUUID(), { items: [{ sku, qty: 1 }] }, { Authorization: `Bearer ${forged}` })).status).toBe(401);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM order_lines WHERE sku = $1`, [sku]);
    expect(rows[0].n).toBe(0);
  });

  it('a customer token buys as its sub; naming someone else in the body or header is refused', async () => {
    const sku = await stock('sub', [5]);
    const alice = `alice-${randomUUID()}`;
    const placed = await purchase(gw.url, randomUUID(), alice, [{ sku, qty: 1 }]);
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    const { rows } = await pool.query(`SELECT customer_id FROM orders WHERE id = $1`, [placed.body.orderId]);
    expect(rows[0].customer_id).toBe(alice);
    const spoof = await buy(randomUUID(), { customerId: 'bob', items: [{ sku, qty: 1 }] }, await as(alice));
    expect(spoof.status).toBe(400);
    expect(spoof.body).toMatchObject({ error: 'invalid_customer', details: { field: 'customerId' } });
    const spoofHeader = await buy(randomUUID(), { items: [{ sku, qty: 1 }] }, { ...(await as(alice)), 'X-Customer-Id': 'bob' });
    expect(spoofHeader.status).toBe(400);
  });

  it('a storefront backend with purchase:act-for names the customer; a service without it may not buy', async () => {
    const sku = await stock('actfor', [5]);
    const placed = await buy(randomUUID(), { items: [{ sku, qty: 1 }] }, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'carol' });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    const { rows } = await pool.query(`SELECT customer_id FROM orders WHERE id = $1`, [placed.body.orderId]);
    expect(rows[0].customer_id).toBe('carol');
    const payments = await buy(randomUUID(), { customerId: 'carol', items: [{ sku, qty: 1 }] }, { Authorization: 'Bearer dev-payments-key' });
    expect(payments.status).toBe(403);
    expect(payments.body).toMatchObject({ error: 'forbidden' });
  });

  it("replaying another customer's Idempotency-Key and body does not return their order", async () => {
    const sku = await stock('replay', [5]);
    const key = randomUUID();
    const victim = await purchase(gw.url, key, 'victim', [{ sku, qty: 1 }]);
    expect(victim.status).toBe(201);
    const thief = await purchase(gw.url, key, 'thief', [{ sku, qty: 1 }]);
    expect(thief.status).toBe(201);
    expect(thief.headers['idempotent-replayed']).toBeUndefined();
    expect(thief.body.orderId).not.toBe(victim.body.orderId);
    // The victim's own retry still replays its order.
    const again = await purchase(gw.url, key, 'victim', [{ sku, qty: 1 }]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.orderId).toBe(victim.body.orderId);
    const { rows } = await pool.query(`SELECT customer_id FROM orders WHERE idempotency_key = $1 ORDER BY customer_id`, [key]);
    expect(rows.map((r) => r.customer_id)).toEqual(['thief', 'victim']);
  });
});

describe('finding 11: control characters in a customer id', () => {
  it('a NUL in customerId is a 400 invalid_customer, not a 503 with Retry-After', async () => {
    const sku = await stock('nul', [5]);
    const r = await buy(randomUUID(), { customerId: 'a\u0000b', items: [{ sku, qty: 1 }] }, { Authorization: 'Bearer dev-storefront-key' });
    expect(r.status).toBe(400);
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.body).toMatchObject({ details: { field: 'customerId' } });
    const bell = await buy(randomUUID(), { items: [{ sku, qty: 1 }] }, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'a\u0007b' }).catch(() => null);
    // Node's HTTP client refuses to send control characters in a header: either way nothing is reserved.
    if (bell) expect(bell.status).toBe(400);
    expect((await gate.state(sku)).available).toBe(5);
  });
});

describe('finding 2: orders have an owner', () => {
  it("another customer, no credential or the wrong scope: 404 (or 401), the order untouched; the owner and scoped services may", async () => {
    const sku = await stock('own', [5]);
    const placed = await purchase(gw.url, randomUUID(), 'owner', [{ sku, qty: 2 }]);
    const id = String(placed.body.orderId);
    const other = await as('mallory');
    expect((await get(gw.url, `/v1/orders/${id}`)).status).toBe(401);
    for (const [path, headers] of [
      [`/v1/orders/${id}`, other],
      [`/v1/orders/${id}`, { Authorization: 'Bearer dev-storefront-key' }],
      [`/v1/orders/${id}`, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'mallory' }],
    ] as const) {
      const r = await get(gw.url, path, headers);
      expect(r.status, path).toBe(404);
      expect(r.body).toMatchObject({ error: 'unknown_order', details: { orderId: id } });
    }
    for (const [verb, headers] of [
      ['confirm', other],
      ['cancel', other],
      ['confirm', { Authorization: 'Bearer dev-support-key' }], // support may cancel, not confirm
      ['cancel', { Authorization: 'Bearer dev-payments-key' }], // payments may confirm, not cancel
      ['confirm', {}],
    ] as const) {
      const r = await post(gw.url, `/v1/orders/${id}/${verb}`, {}, headers);
      expect(r.status, `${verb} ${JSON.stringify(headers).slice(0, 40)}`).toBe(Object.keys(headers).length ? 404 : 401);
    }
    const { rows } = await pool.query(`SELECT status FROM orders WHERE id = $1`, [id]);
    expect(rows[0].status).toBe('reserved');
    const mine = await get(gw.url, `/v1/orders/${id}`, await as('owner'));
    expect(mine.body).toMatchObject({ orderId: id, customerId: 'owner', status: 'reserved' });
    expect((await get(gw.url, `/v1/orders/${id}`, { Authorization: 'Bearer dev-support-key' })).status).toBe(200);
    expect((await get(gw.url, `/v1/orders/${id}`, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'owner' })).status).toBe(200);
    const confirmed = await post(gw.url, `/v1/orders/${id}/confirm`, {}, { Authorization: 'Bearer dev-payments-key' });
    expect(confirmed.body).toMatchObject({ orderId: id, status: 'confirmed' });
    const second = await purchase(gw.url, randomUUID(), 'owner', [{ sku, qty: 1 }]);
    const cancelled = await post(gw.url, `/v1/orders/${String(second.body.orderId)}/cancel`, {}, await as('owner'));
    expect(cancelled.body).toMatchObject({ status: 'cancelled' });
  });
});

describe('finding 3: waiting-room tickets', () => {
  it('a ticket URL is unguessable and opens only for its owner, over GET and server-sent events', async () => {
    // 1 unit, factor 1: ticket 1 goes to the gate; after a restock the next ones are waitlisted.
    const first = await purchase(gw.url, randomUUID(), 'early', [{ sku: hotSku, qty: 1 }]);
    expect(first.status).toBe(201);
    await pool.query(`UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = $1`, [hotSku]);
    await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix: hotSku });
    const w = await purchase(gw.url, randomUUID(), 'waiter', [{ sku: hotSku, qty: 1 }]);
    expect(w.status, JSON.stringify(w.body)).toBe(202);
    const ticket = Number(w.body.ticket);
    const fate = String(w.body.fate);
    expect(fate).toMatch(new RegExp(`^/v1/tickets/${hotSku}/${ticket}-[A-Za-z0-9_-]{22}$`));
    expect(w.headers.location).toBe(fate);
    // The sequence number alone is not a ticket reference.
    expect((await get(gw.url, `/v1/tickets/${hotSku}/${ticket}`, await as('waiter'))).status).toBe(400);
    expect((await get(gw.url, `/v1/tickets/${hotSku}/1`, await as('early'))).status).toBe(400);
    // Someone else holding the exact URL: 404, over GET and SSE; no credential: 401.
    for (const path of [fate, `${fate}/events`]) {
      const r = await get(gw.url, path, await as('mallory'));
      expect(r.status, path).toBe(404);
      expect(r.body).toMatchObject({ error: 'unknown_ticket' });
      expect((await get(gw.url, path)).status).toBe(401);
    }
    // A forged MAC for a real ticket number: 404 even for the owner.
    expect((await get(gw.url, `/v1/tickets/${hotSku}/${ticket}-${'A'.repeat(22)}`, await as('waiter'))).status).toBe(404);
    expect((await get(gw.url, fate, await as('waiter'))).body).toEqual({ sku: hotSku, ticket, decided: false });
    await gw.purchases.admitOnce();
    const decided = await get(gw.url, fate, await as('waiter'));
    expect(decided.body).toMatchObject({ decided: true, outcome: { status: 201, body: { status: 'reserved', ticket } } });
    // A storefront backend acting for the owner may look; acting for someone else may not.
    expect((await get(gw.url, fate, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'waiter' })).status).toBe(200);
    expect((await get(gw.url, fate, { Authorization: 'Bearer dev-storefront-key', 'X-Customer-Id': 'mallory' })).status).toBe(404);
  });
});

describe('finding 5: hot SKUs are rate-limited before a ticket, and refusals do not fill Redis', () => {
  it('5,000 hot-SKU requests from one client: 429s appear and only a handful of Redis keys are created', async () => {
    const count = async () => {
      let n = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        n += keys.length;
      } while (cursor !== '0');
      return n;
    };
    const before = await count();
    const headers = await as('flooder');
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < 5000) {
        next++;
        const r: HttpReply = await post(gwLimited.url, '/v1/purchases', { items: [{ sku: floodSku, qty: 1 }] }, { ...headers, 'Idempotency-Key': randomUUID() });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const created = (await count()) - before;
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(5000);
    expect(statuses.get(429) ?? 0).toBeGreaterThan(4000);
    expect(statuses.get(500) ?? 0).toBe(0);
    expect(statuses.get(503) ?? 0).toBe(0);
    // Buckets, the room's own keys, 3 orders' holds and idempotency records, the signing secret:
    // a few dozen at most, where main created one 24 h key per request.
    expect(created).toBeLessThan(40);
  });
});

describe('finding 5: what a refused ticket keeps', () => {
  it('a waitlisted ticket refused later keeps its fate briefly and does not bind its key; a success keeps the idempotency TTL', async () => {
    const sku = `${skuPrefix}-brief`;
    await pool.query(`INSERT INTO stock_levels (sku, location_id, on_hand) VALUES ($1, 'WH-1', 1)`, [sku]);
    await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix: sku });
    const hotGw = await startGatewayService(loadConfig({ ...base, PURCHASE_HOT_SKUS: sku, PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0' }), logger, { port: 0, metricsDefaults: false });
    try {
      const won = await post(hotGw.url, '/v1/purchases', { items: [{ sku, qty: 1 }] }, { ...(await as('first')), 'Idempotency-Key': randomUUID() });
      expect(won.status).toBe(201);
      // Restock by one: the next buyer is past the cap with a unit left -> waitlisted.
      await pool.query(`UPDATE stock_levels SET on_hand = 2 WHERE sku = $1`, [sku]);
      await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix: sku });
      const key = randomUUID();
      const w = await post(hotGw.url, '/v1/purchases', { items: [{ sku, qty: 1 }] }, { ...(await as('late')), 'Idempotency-Key': key });
      expect(w.status).toBe(202);
      // The unit goes away again (a pick): the worker declares the waitlisted ticket sold out.
      await pool.query(`UPDATE stock_levels SET on_hand = 1 WHERE sku = $1`, [sku]);
      await rebuildViews({ pool, views, feedMaxLen: 10_000 }, { skuPrefix: sku });
      expect(await hotGw.purchases.admitOnce()).toBe(1);
      const fate = await get(hotGw.url, String(w.body.fate), await as('late'));
      expect(fate.body).toMatchObject({ decided: true, outcome: { status: 409, body: { error: 'sold_out' } } });
      const refusalTtl = await redis.ttl(`${prefix}:{${sku}}:wr:fate:${String(w.body.ticket)}`);
      expect(refusalTtl).toBeGreaterThan(0);
      expect(refusalTtl).toBeLessThanOrEqual(config.purchase.refusalTtlS);
      const successTtl = await redis.ttl(`${prefix}:{${sku}}:wr:fate:${String(won.body.ticket)}`);
      expect(successTtl).toBeGreaterThan(config.purchase.refusalTtlS);
      // The key is not bound to the refused ticket: a retry is evaluated afresh (sold out, no ticket).
      const retry = await post(hotGw.url, '/v1/purchases', { items: [{ sku, qty: 1 }] }, { ...(await as('late')), 'Idempotency-Key': key });
      expect(retry.status).toBe(409);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      // Once the refusal is gone, the ticket is unknown rather than "undecided" forever.
      await redis.del(`${prefix}:{${sku}}:wr:fate:${String(w.body.ticket)}`);
      expect((await get(hotGw.url, String(w.body.fate), await as('late'))).status).toBe(404);
    } finally {
      await hotGw.stop();
    }
  });
});

describe('finding 6: HTTP follows the WebSocket channel rules', () => {
  it('anonymous stock reads get public availability only; wms/erp/stock:read-locations credentials get the locations', async () => {
    const sku = await stock('loc', [7, 3]);
    for (const path of [`/v1/stock/${sku}`, `/v1/stock?skus=${sku}`]) {
      const anon = await get(gw.url, path);
      expect(anon.status).toBe(200);
      const item = (path.includes('?') ? (anon.body.items as Array<Record<string, unknown>>)[0] : anon.body)!;
      expect(Object.keys(item).sort()).toEqual(['available', 'commitTs', 'committedAt', 'deleted', 'sku', 'version']);
      expect(item.available).toBe(10);
      const shop = await get(gw.url, path, { Authorization: 'Bearer dev-storefront-key' });
      expect(JSON.stringify(shop.body)).not.toContain('locations');
      for (const key of ['dev-wms-key', 'dev-erp-key', 'dev-support-key']) {
        const full = await get(gw.url, path, { Authorization: `Bearer ${key}` });
        const it = (path.includes('?') ? (full.body.items as Array<Record<string, unknown>>)[0] : full.body)!;
        expect(it, key).toMatchObject({ onHand: 10, reserved: 0, locations: expect.arrayContaining([expect.objectContaining({ locationId: 'WH-1', onHand: 7 })]) });
      }
      expect((await get(gw.url, path, { Authorization: 'Bearer not-a-key-at-all' })).status).toBe(401);
    }
  });

  it('POST /v1/adjustments needs adjustments:write: a purchase or read-only credential gets 403', async () => {
    const body = { adjustmentId: randomUUID(), sku: 'X', locationId: 'WH-1', kind: 'RECEIPT', quantity: 1, occurredAt: Date.now(), sourceSystem: 't' };
    for (const key of ['dev-storefront-key', 'dev-support-key']) {
      const r = await post(gw.url, '/v1/adjustments', body, { Authorization: `Bearer ${key}` });
      expect(r.status, key).toBe(403);
      expect(r.body).toMatchObject({ error: 'forbidden' });
    }
    expect((await post(gw.url, '/v1/adjustments', body, { Authorization: `Bearer ${await customerToken('alice')}` })).status).toBe(403);
    expect((await post(gw.url, '/v1/adjustments', body)).status).toBe(401);
  });
});

describe('finding 10: tokens', () => {
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  const serviceToken = (exp: number, claims: Record<string, unknown> = { channels: ['wms'] }) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('wms-1').setIssuedAt().setExpirationTime(exp).sign(secret);

  function open(token: string) {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/stream?channel=wms&token=${token}`);
    sockets.push(ws);
    const frames: Array<Record<string, unknown>> = [];
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const waitFor = (pred: (f: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const hit = frames.find(pred);
        if (hit) return resolve(hit);
        ws.on('message', function on(data) {
          const f = JSON.parse(String(data)) as Record<string, unknown>;
          if (pred(f)) {
            ws.off('message', on);
            resolve(f);
          }
        });
      });
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>));
    return { ws, frames, closed, waitFor };
  }

  it('a JWT without exp, or living past the maximum lifetime, is refused (HTTP 401, WebSocket 4001)', async () => {
    const noExp = await new SignJWT({ channels: ['wms'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('wms-1').sign(secret);
    const tooLong = await serviceToken(Math.floor(Date.now() / 1000) + 30 * 86_400);
    for (const token of [noExp, tooLong]) {
      const c = open(token);
      expect(await c.closed).toBe(4001);
      expect(c.frames[0]).toMatchObject({ type: 'error', code: 'unauthorized' });
    }
    const customerNoExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(secret);
    expect((await buy(randomUUID(), { items: [{ sku: 'x', qty: 1 }] }, { Authorization: `Bearer ${customerNoExp}` })).status).toBe(401);
  });

  it('a wms connection is closed with 4005 token_expired when its token expires', async () => {
    const c = open(await serviceToken(Math.floor(Date.now() / 1000) + 2));
    const welcome = await c.waitFor((f) => f.type === 'welcome');
    expect(typeof welcome.tokenExpiresAt).toBe('number');
    expect(await c.closed).toBe(4005);
    expect(c.frames.at(-1)).toMatchObject({ type: 'error', code: 'token_expired' });
  });

  it('an auth frame with a fresh token keeps the connection open past the first expiry; a bad one changes nothing', async () => {
    const firstExp = Math.floor(Date.now() / 1000) + 2;
    const c = open(await serviceToken(firstExp));
    await c.waitFor((f) => f.type === 'welcome');
    c.ws.send(JSON.stringify({ op: 'auth', token: 'not-a-token', id: 1 }));
    expect(await c.waitFor((f) => f.id === 1)).toMatchObject({ type: 'error', code: 'unauthorized' });
    c.ws.send(JSON.stringify({ op: 'auth', token: await serviceToken(firstExp + 600, { channels: ['erp'] }), id: 2 }));
    expect(await c.waitFor((f) => f.id === 2)).toMatchObject({ type: 'error', code: 'unauthorized' });
    const fresh = firstExp + 600;
    c.ws.send(JSON.stringify({ op: 'auth', token: await serviceToken(fresh), id: 3 }));
    expect(await c.waitFor((f) => f.id === 3)).toEqual({ type: 'authenticated', channel: 'wms', tokenExpiresAt: fresh * 1000, id: 3 });
    // Past the first token's expiry, the connection still answers.
    await new Promise((r) => setTimeout(r, Math.max(0, firstExp * 1000 - Date.now()) + 500));
    c.ws.send(JSON.stringify({ op: 'ping', id: 4 }));
    expect(await c.waitFor((f) => f.id === 4)).toMatchObject({ type: 'pong' });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });
});
