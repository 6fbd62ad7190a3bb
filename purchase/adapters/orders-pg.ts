/**
 * The purchase path's Postgres side: write-back of accepted holds, order transitions (confirm,
 * cancel, expiry) and the reaper's settlement, each in one transaction with its outbox row(s).
 * The outbox rows carry aggregatetype `orders`, so Debezium's event router publishes them to
 * `orders.events` keyed by order id, with the outbox id as the event id (header `id`).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { allocate, type Allocation, type LocationStock } from '../domain/allocate.ts';
import type { GateItem } from './gate.ts';

export type OrderStatus = 'reserved' | 'confirmed' | 'cancelled' | 'expired' | 'abandoned';
export type OrderEventType = 'OrderPlaced' | 'OrderConfirmed' | 'OrderCancelled' | 'ReservationExpired';

export interface HoldToWrite {
  holdId: string;
  customerId: string;
  idempotencyKey: string;
  hash: string;
  items: GateItem[];
  expiresAt: Date;
}

export interface OrderLine {
  sku: string;
  qty: number;
  allocations: Allocation[];
}

export type WriteResult =
  | { ok: true; versions: Map<string, number>; lines: OrderLine[] }
  /** `insufficient`: Postgres cannot cover it; `exists`: the id is taken (the reaper abandoned the hold); `duplicate_key`: another order holds the idempotency key. */
  | { ok: false; reason: 'insufficient' | 'exists' | 'error'; message: string }
  | { ok: false; reason: 'duplicate_key'; existing: { orderId: string; hash: string | null } };

export interface OrderView {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
  lines: OrderLine[];
}

export type TransitionResult =
  | { ok: true; order: OrderView }
  | { ok: false; reason: 'unknown_order' }
  | { ok: false; reason: 'invalid_state'; status: OrderStatus; order: OrderView };

class GuardError extends Error {}

const RETRY_CODES = new Set(['40P01', '40001']);

function eventPayload(type: OrderEventType, o: { orderId: string; customerId: string; status: OrderStatus; expiresAt: string; lines: OrderLine[] }) {
  return { type, orderId: o.orderId, customerId: o.customerId, status: o.status, expiresAt: o.expiresAt, occurredAt: new Date().toISOString(), items: o.lines };
}

async function inTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (attempt < 5 && RETRY_CODES.has((err as { code?: string }).code ?? '')) continue;
      throw err;
    } finally {
      c.release();
    }
  }
}

async function insertOutbox(c: pg.PoolClient, events: Array<{ orderId: string; type: OrderEventType; payload: unknown }>): Promise<void> {
  if (events.length === 0) return;
  await c.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT id, 'orders', aggregateid, type, payload FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) AS e(id, aggregateid, type, payload)`,
    [events.map(() => randomUUID()), events.map((e) => e.orderId), events.map((e) => e.type), events.map((e) => JSON.stringify(e.payload))],
  );
}

export class OrdersStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Writes accepted holds in ONE transaction: locks the SKUs' stock rows (sorted), allocates
   * each hold's lines from the locked figures, inserts orders/lines/reservations, raises
   * `reserved` with the SQL guard, and adds one OrderPlaced outbox row per order. A hold that
   * cannot be written is reported, the others still commit.
   */
  async writeHolds(holds: HoldToWrite[]): Promise<Map<string, WriteResult>> {
    try {
      return await inTx(this.pool, (c) => this.writeIn(c, holds));
    } catch (err) {
      if (holds.length === 1) {
        return new Map([[holds[0]!.holdId, { ok: false, reason: err instanceof GuardError ? 'insufficient' : 'error', message: (err as Error).message }]]);
      }
      // Isolate whatever failed: each hold on its own.
      const out = new Map<string, WriteResult>();
      for (const h of holds) for (const [id, r] of await this.writeHolds([h])) out.set(id, r);
      return out;
    }
  }

  private async writeIn(c: pg.PoolClient, holds: HoldToWrite[]): Promise<Map<string, WriteResult>> {
    const out = new Map<string, WriteResult>();
    const skus = [...new Set(holds.flatMap((h) => h.items.map((i) => i.sku)))].sort();
    const rows = await c.query<{ sku: string; location_id: string; on_hand: number; reserved: number; safety_stock: number }>(
      `SELECT sku, location_id, on_hand, reserved, safety_stock FROM stock_levels WHERE sku = ANY($1::text[]) ORDER BY sku, location_id FOR UPDATE`,
      [skus],
    );
    const stock = new Map<string, LocationStock[]>();
    for (const r of rows.rows) {
      const list = stock.get(r.sku) ?? [];
      list.push({ locationId: r.location_id, onHand: r.on_hand, reserved: r.reserved, safetyStock: r.safety_stock });
      stock.set(r.sku, list);
    }
    // Allocate in arrival order against a working copy of the locked figures.
    const planned: Array<{ hold: HoldToWrite; lines: OrderLine[] }> = [];
    for (const hold of holds) {
      const lines: OrderLine[] = [];
      for (const item of hold.items) {
        const a = allocate(stock.get(item.sku) ?? [], item.qty);
        if (!a) break;
        lines.push({ sku: item.sku, qty: item.qty, allocations: a });
      }
      if (lines.length !== hold.items.length) {
        out.set(hold.holdId, { ok: false, reason: 'insufficient', message: 'Postgres does not hold enough sellable units for this purchase' });
        continue;
      }
      for (const line of lines) {
        for (const a of line.allocations) stock.get(line.sku)!.find((l) => l.locationId === a.locationId)!.reserved += a.qty;
      }
      planned.push({ hold, lines });
    }
    if (planned.length === 0) return out;

    const inserted = await c.query<{ id: string }>(
      `INSERT INTO orders (id, customer_id, status, idempotency_key, request_hash, expires_at)
       SELECT id, customer_id, 'reserved', idem, hash, expires_at FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS o(id, customer_id, idem, hash, expires_at)
       ON CONFLICT DO NOTHING RETURNING id`,
      [planned.map((p) => p.hold.holdId), planned.map((p) => p.hold.customerId), planned.map((p) => p.hold.idempotencyKey), planned.map((p) => p.hold.hash), planned.map((p) => p.hold.expiresAt.toISOString())],
    );
    const written = new Set(inserted.rows.map((r) => r.id));
    const conflicted = planned.filter((p) => !written.has(p.hold.holdId));
    if (conflicted.length > 0) {
      const existing = await c.query<{ id: string; idempotency_key: string | null; request_hash: string | null }>(
        `SELECT id, idempotency_key, request_hash FROM orders WHERE id = ANY($1::uuid[]) OR idempotency_key = ANY($2::text[])`,
        [conflicted.map((p) => p.hold.holdId), conflicted.map((p) => p.hold.idempotencyKey)],
      );
      for (const p of conflicted) {
        const byId = existing.rows.find((r) => r.id === p.hold.holdId);
        const byKey = existing.rows.find((r) => r.idempotency_key === p.hold.idempotencyKey && r.id !== p.hold.holdId);
        if (!byId && byKey) out.set(p.hold.holdId, { ok: false, reason: 'duplicate_key', existing: { orderId: byKey.id, hash: byKey.request_hash } });
        else out.set(p.hold.holdId, { ok: false, reason: 'exists', message: 'the hold was settled without this write-back (it took too long)' });
      }
    }
    const accepted = planned.filter((p) => written.has(p.hold.holdId));
    if (accepted.length === 0) return out;

    // One guarded UPDATE per (sku, location): the database's own no-oversell check.
    const totals = new Map<string, { sku: string; loc: string; qty: number }>();
    for (const p of accepted) {
      for (const line of p.lines) {
        for (const a of line.allocations) {
          const k = JSON.stringify([line.sku, a.locationId]);
          const t = totals.get(k) ?? { sku: line.sku, loc: a.locationId, qty: 0 };
          t.qty += a.qty;
          totals.set(k, t);
        }
      }
    }
    const t = [...totals.values()];
    const updated = await c.query<{ sku: string; version: string }>(
      `UPDATE stock_levels s SET reserved = s.reserved + d.qty
       FROM unnest($1::text[], $2::text[], $3::int[]) AS d(sku, location_id, qty)
       WHERE s.sku = d.sku AND s.location_id = d.location_id AND s.on_hand - s.reserved - s.safety_stock >= d.qty
       RETURNING s.sku, s.version`,
      [t.map((x) => x.sku), t.map((x) => x.loc), t.map((x) => x.qty)],
    );
    if (updated.rowCount !== t.length) throw new GuardError('the stock guard refused the reservation (on_hand - reserved - safety_stock < qty)');
    const versions = new Map<string, number>();
    for (const r of updated.rows) versions.set(r.sku, Math.max(versions.get(r.sku) ?? 0, Number(r.version)));

    const lineRows = accepted.flatMap((p) => p.lines.map((l) => ({ id: p.hold.holdId, sku: l.sku, qty: l.qty, version: versions.get(l.sku)! })));
    await c.query(
      `INSERT INTO order_lines (order_id, sku, qty, version) SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[])`,
      [lineRows.map((r) => r.id), lineRows.map((r) => r.sku), lineRows.map((r) => r.qty), lineRows.map((r) => r.version)],
    );
    const resRows = accepted.flatMap((p) => p.lines.flatMap((l) => l.allocations.map((a) => ({ id: p.hold.holdId, sku: l.sku, loc: a.locationId, qty: a.qty }))));
    await c.query(
      `INSERT INTO reservations (order_id, sku, location_id, qty) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[])`,
      [resRows.map((r) => r.id), resRows.map((r) => r.sku), resRows.map((r) => r.loc), resRows.map((r) => r.qty)],
    );
    await insertOutbox(
      c,
      accepted.map((p) => ({
        orderId: p.hold.holdId,
        type: 'OrderPlaced' as const,
        payload: eventPayload('OrderPlaced', { orderId: p.hold.holdId, customerId: p.hold.customerId, status: 'reserved', expiresAt: p.hold.expiresAt.toISOString(), lines: p.lines }),
      })),
    );
    for (const p of accepted) {
      const v = new Map(p.lines.map((l) => [l.sku, versions.get(l.sku)!]));
      out.set(p.hold.holdId, { ok: true, versions: v, lines: p.lines });
    }
    return out;
  }

  async getOrder(orderId: string, c: pg.Pool | pg.PoolClient = this.pool, lock = false): Promise<OrderView | null> {
    const o = await c.query<{ id: string; customer_id: string; status: OrderStatus; expires_at: Date; created_at: Date; updated_at: Date }>(
      `SELECT id, customer_id, status, expires_at, created_at, updated_at FROM orders WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [orderId],
    );
    const row = o.rows[0];
    if (!row) return null;
    const r = await c.query<{ sku: string; qty: number; location_id: string | null; rqty: number | null }>(
      `SELECT l.sku, l.qty, r.location_id, r.qty AS rqty FROM order_lines l LEFT JOIN reservations r ON r.order_id = l.order_id AND r.sku = l.sku
       WHERE l.order_id = $1 ORDER BY l.sku, r.location_id`,
      [orderId],
    );
    const lines = new Map<string, OrderLine>();
    for (const x of r.rows) {
      const line = lines.get(x.sku) ?? { sku: x.sku, qty: x.qty, allocations: [] };
      if (x.location_id !== null && x.rqty !== null) line.allocations.push({ locationId: x.location_id, qty: x.rqty });
      lines.set(x.sku, line);
    }
    return {
      orderId: row.id,
      customerId: row.customer_id,
      status: row.status,
      expiresAt: row.expires_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      lines: [...lines.values()],
    };
  }

  /**
   * reserved -> confirmed (payment captured: on_hand and reserved both fall) or cancelled
   * (reserved falls). A hold past its expiry is expired here instead and reported as such.
   */
  async transition(orderId: string, to: 'confirmed' | 'cancelled'): Promise<TransitionResult> {
    return inTx(this.pool, async (c) => {
      const order = await this.getOrder(orderId, c, true);
      if (!order) return { ok: false, reason: 'unknown_order' };
      if (order.status !== 'reserved') return { ok: false, reason: 'invalid_state', status: order.status, order };
      if (Date.parse(order.expiresAt) <= Date.now()) {
        const expired = await this.finish(c, order, 'expired');
        return { ok: false, reason: 'invalid_state', status: 'expired', order: expired };
      }
      return { ok: true, order: await this.finish(c, order, to) };
    });
  }

  /** Applies a terminal transition inside `c`: stock rows, status, outbox. */
  private async finish(c: pg.PoolClient, order: OrderView, to: 'confirmed' | 'cancelled' | 'expired'): Promise<OrderView> {
    const res = order.lines.flatMap((l) => l.allocations.map((a) => ({ sku: l.sku, loc: a.locationId, qty: a.qty })));
    res.sort((a, b) => (a.sku === b.sku ? (a.loc < b.loc ? -1 : 1) : a.sku < b.sku ? -1 : 1));
    const onHandDelta = to === 'confirmed' ? 1 : 0;
    const u = await c.query(
      `UPDATE stock_levels s SET reserved = s.reserved - d.qty, on_hand = s.on_hand - d.qty * $4
       FROM unnest($1::text[], $2::text[], $3::int[]) AS d(sku, location_id, qty)
       WHERE s.sku = d.sku AND s.location_id = d.location_id AND s.reserved >= d.qty`,
      [res.map((r) => r.sku), res.map((r) => r.loc), res.map((r) => r.qty), onHandDelta],
    );
    if (u.rowCount !== res.length) throw new Error(`order ${order.orderId}: its reservations are no longer in stock_levels (rows changed: ${u.rowCount}/${res.length})`);
    const upd = await c.query<{ updated_at: Date }>(`UPDATE orders SET status = $2, updated_at = clock_timestamp() WHERE id = $1 RETURNING updated_at`, [order.orderId, to]);
    const next: OrderView = { ...order, status: to, updatedAt: upd.rows[0]!.updated_at.toISOString() };
    const type: OrderEventType = to === 'confirmed' ? 'OrderConfirmed' : to === 'cancelled' ? 'OrderCancelled' : 'ReservationExpired';
    await insertOutbox(c, [{ orderId: order.orderId, type, payload: eventPayload(type, next) }]);
    return next;
  }

  /**
   * Expires up to `limit` holds past their deadline. `FOR UPDATE SKIP LOCKED`: several workers
   * (one per gateway) share the work and never expire an order twice.
   */
  async expireDue(limit = 100): Promise<OrderView[]> {
    return inTx(this.pool, async (c) => {
      const due = await c.query<{ id: string }>(
        `SELECT id FROM orders WHERE status = 'reserved' AND expires_at <= clock_timestamp() ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      const out: OrderView[] = [];
      for (const { id } of due.rows) {
        const order = await this.getOrder(id, c);
        if (order) out.push(await this.finish(c, order, 'expired'));
      }
      return out;
    });
  }

  /**
   * The reaper's decision for a hold whose write-back outcome is unknown: an `abandoned` order
   * with the hold's id. If this insert wins, the write-back can never commit (the id is taken)
   * and the hold is released; if an order with the id exists, its write-back committed and its
   * per-SKU versions are returned.
   */
  async settleHold(hold: { holdId: string; customerId: string }): Promise<{ abandoned: true } | { abandoned: false; status: OrderStatus; versions: Map<string, number> }> {
    const ins = await this.pool.query(
      `INSERT INTO orders (id, customer_id, status, expires_at) VALUES ($1, $2, 'abandoned', clock_timestamp()) ON CONFLICT (id) DO NOTHING`,
      [hold.holdId, hold.customerId],
    );
    if (ins.rowCount === 1) return { abandoned: true };
    const o = await this.pool.query<{ status: OrderStatus }>(`SELECT status FROM orders WHERE id = $1`, [hold.holdId]);
    const lines = await this.pool.query<{ sku: string; version: string }>(`SELECT sku, version FROM order_lines WHERE order_id = $1`, [hold.holdId]);
    return { abandoned: false, status: o.rows[0]?.status ?? 'abandoned', versions: new Map(lines.rows.map((r) => [r.sku, Number(r.version)])) };
  }

  async findByIdempotencyKey(key: string): Promise<{ orderId: string; hash: string | null } | null> {
    const r = await this.pool.query<{ id: string; request_hash: string | null }>(`SELECT id, request_hash FROM orders WHERE idempotency_key = $1`, [key]);
    const row = r.rows[0];
    return row ? { orderId: row.id, hash: row.request_hash } : null;
  }
}
