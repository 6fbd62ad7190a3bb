/**
 * The database-only baseline of the flash-sale benchmark (tools/bench/flash-sale.ts): POST /v1/purchases
 * with the gateway's contract, decided by Postgres alone, no Redis. It exists to be compared with,
 * so it is built to be as fast as an honest database-only design can be:
 *
 *   - node:http (no framework), the same request validation and hash as the gateway
 *     (purchase/domain/request.ts: zod, strict);
 *   - one round trip per attempt: a named (prepared) call of the PL/pgSQL function
 *     `bench_db_only_purchase(...)`, which does the idempotency lookup, the stock check, the
 *     reservation, the per-customer limit and the order insert in one implicit transaction;
 *   - a refusal reads the stock row from the statement's snapshot (no row lock, never waits for
 *     the purchasers queued on the hot row); only a purchase that can succeed takes the row lock,
 *     and its UPDATE re-checks availability under the lock (`on_hand - reserved - safety_stock >=
 *     qty`), so concurrent buyers never oversell;
 *   - one stock row per SKU (the hottest possible row, but a single lock per purchase) and one
 *     order row per purchase (lines as jsonb), durable commits like the platform's write-back.
 *
 * It uses its own tables (`bench_db_only_stock`, `bench_db_only_orders`,
 * `bench_db_only_customer_units`), created when missing, and never touches platform data. What it
 * leaves out, on purpose: the outbox row, order lines and reservations as separate tables, holds
 * expiry, rate limiting (the benchmark turns the gateway's off). A refusal is not recorded, so a
 * replayed key whose first attempt was refused is decided again (recording every refusal would be
 * a write per attempt).
 *
 * Also serves GET /v1/stock/:sku (from Postgres) and GET /readyz, so that tools/cli/simulate.ts can
 * run against it.
 *
 * Usage: node --import tsx tools/bench/db-only-purchase-server.ts [--port 0] [--pool 20]
 *          [--max-per-customer 10] [--hold-ttl-s 900]
 *   (or PORT / DB_ONLY_POOL / PURCHASE_MAX_PER_CUSTOMER in the environment); prints `listening <port>`.
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { loadConfigOrExit } from '../../lib/config.ts';
import { createPgPool } from '../../lib/pg.ts';
import { requestHash, validatePurchase, validIdempotencyKey } from '../../purchase/domain/request.ts';

const MAX_BODY_BYTES = 16 * 1024;

/** Creates the baseline's tables and function when missing (idempotent; safe with several servers). */
export async function ensureDbOnlySchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Serialise concurrent creators (CREATE OR REPLACE FUNCTION is not concurrency-safe).
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('bench_db_only_schema'))`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS bench_db_only_stock (
        sku           text PRIMARY KEY,
        on_hand       int  NOT NULL,
        reserved      int  NOT NULL DEFAULT 0,
        safety_stock  int  NOT NULL DEFAULT 0,
        CHECK (on_hand >= 0), CHECK (reserved >= 0), CHECK (safety_stock >= 0)
      );
      CREATE TABLE IF NOT EXISTS bench_db_only_orders (
        id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
        idempotency_key  text        NOT NULL UNIQUE,
        request_hash     text        NOT NULL,
        customer_id      text        NOT NULL,
        items            jsonb       NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now(),
        expires_at       timestamptz NOT NULL
      );
      CREATE TABLE IF NOT EXISTS bench_db_only_customer_units (
        customer_id  text NOT NULL,
        sku          text NOT NULL,
        units        int  NOT NULL,
        PRIMARY KEY (customer_id, sku)
      );
      -- Outcomes: reserved | replay | key_reused (one row), sold_out | unknown_sku (one row, the
      -- first SKU that failed). A later item failing after earlier ones were reserved, or the
      -- customer limit, raises SQLSTATE P0001 with 'bench_db_only:<code>:<sku>:<requested>:<n>' so
      -- that the whole statement rolls back. A concurrent first use of the same key raises 23505
      -- (unique) once the other commits; the caller calls again and gets the replay.
      CREATE OR REPLACE FUNCTION bench_db_only_purchase(
        p_key text, p_hash text, p_customer text, p_skus text[], p_qtys int[], p_limit int, p_ttl_s int)
      RETURNS TABLE (outcome text, order_id uuid, expires_at timestamptz, items jsonb, sku text, requested int, available int)
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        o record;
        i int;
        n int := array_length(p_skus, 1);
        avail int;
        bought int;
      BEGIN
        SELECT b.id, b.request_hash, b.expires_at, b.items INTO o FROM bench_db_only_orders b WHERE b.idempotency_key = p_key;
        IF FOUND THEN
          RETURN QUERY SELECT CASE WHEN o.request_hash = p_hash THEN 'replay' ELSE 'key_reused' END, o.id, o.expires_at, o.items, NULL::text, NULL::int, NULL::int;
          RETURN;
        END IF;
        FOR i IN 1 .. n LOOP
          -- Snapshot read first: a refusal takes no lock and waits for no one.
          SELECT s.on_hand - s.reserved - s.safety_stock INTO avail FROM bench_db_only_stock s WHERE s.sku = p_skus[i];
          IF NOT FOUND OR avail < p_qtys[i] THEN
            IF i > 1 THEN
              RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('bench_db_only:%s:%s:%s:%s', CASE WHEN avail IS NULL THEN 'unknown_sku' ELSE 'sold_out' END, p_skus[i], p_qtys[i], coalesce(avail, 0));
            END IF;
            RETURN QUERY SELECT CASE WHEN avail IS NULL THEN 'unknown_sku' ELSE 'sold_out' END, NULL::uuid, NULL::timestamptz, NULL::jsonb, p_skus[i], p_qtys[i], coalesce(avail, 0);
            RETURN;
          END IF;
          -- The decision: under the row lock, re-checked against the latest committed row.
          UPDATE bench_db_only_stock s SET reserved = s.reserved + p_qtys[i]
            WHERE s.sku = p_skus[i] AND s.on_hand - s.reserved - s.safety_stock >= p_qtys[i];
          IF NOT FOUND THEN
            IF i > 1 THEN
              RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('bench_db_only:sold_out:%s:%s:0', p_skus[i], p_qtys[i]);
            END IF;
            SELECT s.on_hand - s.reserved - s.safety_stock INTO avail FROM bench_db_only_stock s WHERE s.sku = p_skus[i];
            RETURN QUERY SELECT 'sold_out'::text, NULL::uuid, NULL::timestamptz, NULL::jsonb, p_skus[i], p_qtys[i], greatest(coalesce(avail, 0), 0);
            RETURN;
          END IF;
          IF p_limit > 0 THEN
            INSERT INTO bench_db_only_customer_units AS c (customer_id, sku, units) VALUES (p_customer, p_skus[i], p_qtys[i])
              ON CONFLICT ON CONSTRAINT bench_db_only_customer_units_pkey DO UPDATE SET units = c.units + EXCLUDED.units
              RETURNING c.units INTO bought;
            IF bought > p_limit THEN
              RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('bench_db_only:customer_limit:%s:%s:%s', p_skus[i], p_qtys[i], bought - p_qtys[i]);
            END IF;
          END IF;
        END LOOP;
        INSERT INTO bench_db_only_orders AS b (idempotency_key, request_hash, customer_id, items, expires_at)
          SELECT p_key, p_hash, p_customer, jsonb_agg(jsonb_build_object('sku', u.sku, 'qty', u.qty) ORDER BY u.ord), now() + make_interval(secs => p_ttl_s)
          FROM unnest(p_skus, p_qtys) WITH ORDINALITY AS u(sku, qty, ord)
          RETURNING b.id, b.expires_at, b.items INTO o;
        RETURN QUERY SELECT 'reserved'::text, o.id, o.expires_at, o.items, NULL::text, NULL::int, NULL::int;
      END;
      $fn$;
    `);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Sets a SKU's stock in the baseline's table: on_hand = units, nothing reserved. */
export async function stockDbOnly(pool: pg.Pool, sku: string, units: number): Promise<void> {
  await pool.query(
    `INSERT INTO bench_db_only_stock (sku, on_hand, reserved, safety_stock) VALUES ($1, $2, 0, 0)
     ON CONFLICT (sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, reserved = 0, safety_stock = 0`,
    [sku, units],
  );
}

/** Deletes a SKU's rows from the baseline's tables (orders that only hold that SKU). */
export async function cleanupDbOnly(pool: pg.Pool, sku: string): Promise<void> {
  await pool.query(`DELETE FROM bench_db_only_orders WHERE items @> $1::jsonb`, [JSON.stringify([{ sku }])]);
  await pool.query(`DELETE FROM bench_db_only_customer_units WHERE sku = $1`, [sku]);
  await pool.query(`DELETE FROM bench_db_only_stock WHERE sku = $1`, [sku]);
}

interface PurchaseRow {
  outcome: 'reserved' | 'replay' | 'key_reused' | 'sold_out' | 'unknown_sku';
  order_id: string | null;
  expires_at: Date | null;
  items: Array<{ sku: string; qty: number }> | null;
  sku: string | null;
  requested: number | null;
  available: number | null;
}

type Reply = { status: number; body: string; headers?: Record<string, string> };

const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({ status, body: JSON.stringify(body), ...(headers ? { headers } : {}) });
const fail = (status: number, error: string, message: string, details?: Record<string, unknown>): Reply =>
  json(status, { error, message, ...(details ? { details } : {}) });

export function createDbOnlyServer(pool: pg.Pool, opts: { maxPerCustomer: number; holdTtlS: number }): http.Server {
  const call = async (key: string, hash: string, customerId: string, skus: string[], qtys: number[]): Promise<PurchaseRow> => {
    const q = {
      name: 'bench_db_only_purchase',
      text: 'SELECT * FROM bench_db_only_purchase($1, $2, $3, $4::text[], $5::int[], $6, $7)',
      values: [key, hash, customerId, skus, qtys, opts.maxPerCustomer, opts.holdTtlS],
    };
    try {
      return (await pool.query<PurchaseRow>(q)).rows[0]!;
    } catch (err) {
      // The same key used concurrently: the other attempt committed first; ours reads its outcome.
      if ((err as { code?: string }).code === '23505') return (await pool.query<PurchaseRow>(q)).rows[0]!;
      throw err;
    }
  };

  const purchase = async (req: http.IncomingMessage, raw: Buffer): Promise<Reply> => {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || !validIdempotencyKey(key)) {
      return fail(400, 'invalid_idempotency_key', 'header Idempotency-Key is required: 1 to 128 printable characters');
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return fail(400, 'invalid_content_type', 'Content-Type must be application/json');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(400, 'invalid_json', 'the body is not valid JSON');
    }
    const v = validatePurchase(parsed);
    if (!v.ok) return fail(400, 'invalid_request', `${v.field} ${v.message}`, { field: v.field });
    // The database-only baseline has no credentials: the body names the customer.
    const { items } = v.value;
    const customerId = v.value.customerId ?? 'anonymous';
    const sorted = [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)); // lock order: no deadlocks
    let row: PurchaseRow;
    try {
      row = await call(key, requestHash({ customerId, items }), customerId, sorted.map((i) => i.sku), sorted.map((i) => i.qty));
    } catch (err) {
      const m = /^bench_db_only:(\w+):(.*):(\d+):(\d+)$/.exec((err as Error).message);
      if (!m) throw err;
      const [, code, sku, requested, n] = m as unknown as [string, string, string, string, string];
      if (code === 'customer_limit') {
        return fail(409, 'customer_limit', `at most ${opts.maxPerCustomer} units of ${sku} per customer`, { sku, requested: Number(requested), bought: Number(n), limit: opts.maxPerCustomer });
      }
      if (code === 'unknown_sku') return fail(404, 'unknown_sku', `no stock is known for SKU ${sku}`, { sku });
      return fail(409, 'sold_out', `not enough stock of ${sku}`, { sku, requested: Number(requested), available: Number(n) });
    }
    switch (row.outcome) {
      case 'reserved':
      case 'replay':
        return json(201, { orderId: row.order_id, status: 'reserved', expiresAt: row.expires_at!.toISOString(), items: row.items }, row.outcome === 'replay' ? { 'Idempotent-Replayed': 'true' } : undefined);
      case 'key_reused':
        return fail(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request');
      case 'unknown_sku':
        return fail(404, 'unknown_sku', `no stock is known for SKU ${row.sku}`, { sku: row.sku });
      case 'sold_out':
        return fail(409, 'sold_out', `not enough stock of ${row.sku}`, { sku: row.sku, requested: row.requested, available: row.available });
    }
  };

  const stock = async (sku: string): Promise<Reply> => {
    const { rows } = await pool.query<{ on_hand: number; reserved: number; safety_stock: number }>({
      name: 'bench_db_only_stock',
      text: 'SELECT on_hand, reserved, safety_stock FROM bench_db_only_stock WHERE sku = $1',
      values: [sku],
    });
    const r = rows[0];
    if (!r) return fail(404, 'unknown_sku', `no stock is known for SKU ${sku}`, { sku });
    return json(200, { sku, available: Math.max(0, r.on_hand - r.reserved - r.safety_stock), onHand: r.on_hand, reserved: r.reserved, safetyStock: r.safety_stock });
  };

  const route = async (req: http.IncomingMessage, raw: Buffer): Promise<Reply> => {
    const url = req.url ?? '/';
    if (url === '/v1/purchases') return req.method === 'POST' ? purchase(req, raw) : fail(405, 'method_not_allowed', 'use POST');
    if (req.method === 'GET' && url.startsWith('/v1/stock/')) return stock(decodeURIComponent(url.slice('/v1/stock/'.length)));
    if (req.method === 'GET' && (url === '/readyz' || url === '/healthz')) return json(200, { status: 'ready' });
    return fail(404, 'not_found', `no route ${req.method ?? ''} ${url}`);
  };

  const send = (res: http.ServerResponse, r: Reply) => {
    res.writeHead(r.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(r.body), ...r.headers });
    res.end(r.body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return send(res, fail(413, 'body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`));
      route(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).then(
        (r) => send(res, r),
        (err: Error) => {
          process.stderr.write(`db-only: ${err.message}\n`);
          send(res, fail(503, 'unavailable', 'the database could not answer this request'));
        },
      );
    });
  });
  // Load generators hold thousands of keep-alive connections idle between phases.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  return server;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, env: string | undefined, fallback: number): number => {
    const i = argv.indexOf(`--${name}`);
    const raw = i >= 0 ? argv[i + 1] : env;
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      process.stderr.write(`error: --${name} needs a whole number >= 0 (got ${JSON.stringify(raw)})\n`);
      process.exit(2);
    }
    return n;
  };
  const port = opt('port', process.env.PORT, 0);
  const poolSize = Math.max(1, opt('pool', process.env.DB_ONLY_POOL, 20));
  const maxPerCustomer = opt('max-per-customer', process.env.PURCHASE_MAX_PER_CUSTOMER, 10);
  const holdTtlS = Math.max(1, opt('hold-ttl-s', process.env.PURCHASE_HOLD_TTL_S, 900));
  const config = loadConfigOrExit();
  const pool = createPgPool(config.pg.url, { max: poolSize, application: 'invsync-bench-db-only' });
  await ensureDbOnlySchema(pool);
  const server = createDbOnlyServer(pool, { maxPerCustomer, holdTtlS });
  server.listen(port, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : port}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    void pool.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) await main();
