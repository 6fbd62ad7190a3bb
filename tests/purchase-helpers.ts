/**
 * Helpers for purchase-path integration tests: a keep-alive HTTP client that can hold thousands
 * of requests in flight, and Postgres/gate read-outs used to check the invariants.
 */
import { loadConfig, type Config } from '../lib/config.ts';
import http from 'node:http';
import { SignJWT } from 'jose';
import type pg from 'pg';
import type { Gate } from '../purchase/adapters/gate.ts';
import { waitUntil } from './processor-helpers.ts';

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One request to `base + path` (query included); the reply's body parsed as JSON, or `{raw}`. */
function request(method: 'GET' | 'POST' | 'PATCH', base: string, path: string, headers: Record<string, string>, text?: string): Promise<HttpReply> {
  const url = new URL(path, base);
  const sent = text === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: sent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          parsed = { raw };
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** POSTs JSON (or a raw string) to `base + path`. */
export function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  return request('POST', base, path, headers, typeof body === 'string' ? body : JSON.stringify(body));
}

/** PATCHes JSON (or a raw string) to `base + path`. */
export function patch(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  return request('PATCH', base, path, headers, typeof body === 'string' ? body : JSON.stringify(body));
}

/** The HS256 secret test gateways verify customer tokens with (docs/security.md#credentials-who-may-do-what). */
export const TEST_JWT_SECRET = 'purchase-tests-jwt-secret-0123456789abcdef';
/** Configuration for test gateways: customers authenticate with tokens, no anonymous purchases. */
export const IDENTITY_ENV = { GATEWAY_JWT_SECRET: TEST_JWT_SECRET, PURCHASE_ALLOW_ANONYMOUS: '0' } as const;

/**
 * A test gateway's configuration on its own Redis prefix: customers authenticate with tokens,
 * rate limits off; `overrides` on top (e.g. PURCHASE_MAX_PER_CUSTOMER).
 */
export function purchaseTestConfig(prefix: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, REDIS_PREFIX: prefix, ...IDENTITY_ENV, PURCHASE_RATE_CUSTOMER_PER_SEC: '0', PURCHASE_RATE_ADDRESS_PER_SEC: '0', ...overrides });
}

const tokens = new Map<string, Promise<string>>();

/** A customer token (JWT, `sub` = the customer, 1 h) signed with TEST_JWT_SECRET, cached per customer. */
export function customerToken(customerId: string, claims: Record<string, unknown> = {}, ttl = '1h'): Promise<string> {
  const cacheable = Object.keys(claims).length === 0 && ttl === '1h';
  const cached = cacheable ? tokens.get(customerId) : undefined;
  if (cached) return cached;
  const t = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(customerId).setIssuedAt().setExpirationTime(ttl).sign(new TextEncoder().encode(TEST_JWT_SECRET));
  if (cacheable) tokens.set(customerId, t);
  return t;
}

/** `Authorization` header of a customer. */
export async function as(customerId: string): Promise<Record<string, string>> {
  return { Authorization: `Bearer ${await customerToken(customerId)}` };
}

/** A purchase by `customerId`, authenticated with its customer token (the body names no customer). */
export async function purchase(base: string, key: string, customerId: string, items: Array<{ sku: string; qty: number }>): Promise<HttpReply> {
  return post(base, '/v1/purchases', { items }, { 'Idempotency-Key': key, ...(await as(customerId)) });
}

/** GETs `base + path` as JSON. */
export function get(base: string, path: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return request('GET', base, path, headers);
}

export interface SkuTruth {
  onHand: number;
  reserved: number;
  /** Sum over locations of max(0, on_hand - reserved - safety_stock): what may still be sold. */
  sellable: number;
}

export async function skuTruth(pool: pg.Pool, sku: string): Promise<SkuTruth> {
  const { rows } = await pool.query<{ on_hand: string; reserved: string; sellable: string }>(
    `SELECT coalesce(sum(on_hand), 0) AS on_hand, coalesce(sum(reserved), 0) AS reserved,
            coalesce(sum(greatest(0, on_hand - reserved - safety_stock)), 0) AS sellable
     FROM stock_levels WHERE sku = $1`,
    [sku],
  );
  const r = rows[0]!;
  return { onHand: Number(r.on_hand), reserved: Number(r.reserved), sellable: Number(r.sellable) };
}

/** Units held by orders in state `reserved` (what stock_levels.reserved must equal for a test SKU). */
export async function reservedByOrders(pool: pg.Pool, sku: string): Promise<{ orders: number; units: number }> {
  const { rows } = await pool.query<{ orders: string; units: string }>(
    `SELECT count(*) AS orders, coalesce(sum(l.qty), 0) AS units FROM order_lines l JOIN orders o ON o.id = l.order_id
     WHERE l.sku = $1 AND o.status = 'reserved'`,
    [sku],
  );
  return { orders: Number(rows[0]!.orders), units: Number(rows[0]!.units) };
}

/** The gate's available figure once CDC has caught up (no inflight, no unreflected left). */
export async function settledGate(gate: Gate, sku: string): Promise<{ available: number | null; inflight: number; unreflected: number }> {
  const s = await gate.state(sku);
  return { available: s.available, inflight: s.inflight, unreflected: s.unreflected };
}

/**
 * Inserts `sku` with `perLocation` units at WH-1, WH-2, … (and `safety` safety stock each) and
 * waits until the processor has folded it into the view the gate reads.
 */
export async function insertStock(pool: pg.Pool, gate: Gate, sku: string, perLocation: number[], safety = 0): Promise<void> {
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand, safety_stock) SELECT $1, 'WH-' || i, q, $3 FROM unnest($2::int[]) WITH ORDINALITY AS t(q, i)`,
    [sku, perLocation, safety],
  );
  const total = perLocation.reduce((a, b) => a + Math.max(0, b - safety), 0);
  await waitUntil(async () => (await gate.state(sku)).available === total, 20_000, `${sku} in the gate with ${total} available`);
}

/** Waits until CDC has folded every write-back into the view (the gate's own terms are 0). */
export async function gateSettled(gate: Gate, sku: string, timeoutMs = 20_000): Promise<{ available: number | null }> {
  let last = await gate.state(sku);
  await waitUntil(
    async () => {
      last = await gate.state(sku);
      return last.inflight === 0 && last.unreflected === 0;
    },
    timeoutMs,
    `the gate of ${sku} to settle (last ${JSON.stringify(last)})`,
  );
  return last;
}
