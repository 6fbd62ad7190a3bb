/**
 * The purchase path's Postgres side: write-back of accepted holds, order transitions (confirm,
 * cancel, expiry) and the reaper's settlement, each in one transaction with its outbox row(s).
 * The outbox rows carry aggregatetype `orders`, so Debezium's event router publishes them to
 * `orders.events` keyed by order id, with the outbox id as the event id (header `id`).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { fromPgError } from '../../lib/driver-errors.ts';
import { ContentionError, InvalidDataError } from '../../lib/errors.ts';
import { inTransaction } from '../../lib/pg.ts';
import { retry } from '../../lib/retry.ts';
import { encodeMovementContext, movementContextFrom, type MovementContext, type MovementReason } from '../../lib/contracts/movements.ts';
import type {
  GateItem,
  HoldSettlement,
  HoldToWrite,
  LimitRelease,
  OrderLine,
  OrdersPort,
  OrderStatus,
  OrderView,
  TransitionResult,
  WriteResult,
} from '../domain/ports.ts';

export type { HoldToWrite, LimitRelease, OrderLine, OrderStatus, OrderView, TransitionResult, WriteResult };
import { releaseItems } from '../domain/release-items.ts';
export { releaseItems };
export type OrderEventType = 'OrderPlaced' | 'OrderConfirmed' | 'OrderCancelled' | 'ReservationExpired' | 'OrderExtended' | 'OrderChanged';

type WriteBackRow =
  | { id: string; ok: true; lines: OrderLine[]; versions: Record<string, number | string> }
  | { id: string; ok: false; reason: 'insufficient' | 'exists' }
  | { id: string; ok: false; reason: 'duplicate_key'; existing: { orderId: string; hash: string | null } };

/**
 * Deadlock or serialization failure (classified at this edge as ContentionError): the
 * transaction may simply be run again. A Postgres that is down is not retried here: the caller
 * answers for it.
 */
export const RETRY = { retries: 4, initialDelayMs: 5, maxDelayMs: 200, retriable: (err: unknown) => fromPgError(err) instanceof ContentionError };

/** The SQLSTATE of the write-back's guard: a CHECK on stock_levels refusing `reserved` above `on_hand`. */
export const GUARD_VIOLATION = '23514';

export function eventPayload(type: OrderEventType, o: { orderId: string; customerId: string; status: OrderStatus; expiresAt: string; lines: OrderLine[]; kits?: OrderView['kits'] }) {
  return { type, orderId: o.orderId, customerId: o.customerId, status: o.status, expiresAt: o.expiresAt, occurredAt: new Date().toISOString(), items: o.lines, ...(o.kits && o.kits.length > 0 ? { kits: o.kits } : {}) };
}

export function inTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return retry(() => inTransaction(pool, fn), RETRY);
}

export async function insertOutbox(c: pg.PoolClient, events: Array<{ orderId: string; type: OrderEventType; payload: unknown }>): Promise<void> {
  if (events.length === 0) return;
  await c.query(
    `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
     SELECT id, 'orders', aggregateid, type, payload FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) AS e(id, aggregateid, type, payload)`,
    [events.map(() => randomUUID()), events.map((e) => e.orderId), events.map((e) => e.type), events.map((e) => JSON.stringify(e.payload))],
  );
}

/**
 * What the movement ledger records for a write-back (docs/ledger.md): kind `reserve`, and per SKU
 * the orders that reserved it (one order: it is the reference and its customer the actor).
 */
export function writeBackContext(holds: readonly Pick<HoldToWrite, 'holdId' | 'customerId' | 'items' | 'channel'>[]): MovementContext {
  const bySku = new Map<string, Array<{ orderId: string; customerId: string; qty: number; channel?: string }>>();
  for (const h of holds) {
    for (const it of h.items) {
      const list = bySku.get(it.sku) ?? [];
      list.push({ orderId: h.holdId, customerId: h.customerId, qty: it.qty, ...(h.channel ? { channel: h.channel } : {}) });
      bySku.set(it.sku, list);
    }
  }
  const skus: Record<string, MovementReason> = {};
  for (const [sku, orders] of bySku) {
    const one = orders.length === 1 ? orders[0]! : undefined;
    skus[sku] = { reference: one ? `order:${one.orderId}` : null, actor: one ? `customer:${one.customerId}` : null, details: { orders } };
  }
  return { kind: 'reserve', source: 'purchase', skus };
}

/** What the ledger records for an order's terminal transition. */
function orderContext(order: Pick<OrderView, 'orderId' | 'customerId'>, to: 'confirmed' | 'cancelled' | 'expired'): MovementContext {
  const kind = to === 'confirmed' ? 'confirm' : to === 'cancelled' ? 'cancel' : 'expire';
  // The credential that confirmed or cancelled is the gateway's to log; the ledger names the order and its customer.
  return { kind, source: 'purchase', reference: `order:${order.orderId}`, actor: to === 'expired' ? 'hold-expiry' : null, details: { customerId: order.customerId } };
}

export class OrdersStore implements OrdersPort {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Writes accepted holds with ONE call of `purchase_write_back` (migration 0008): it locks the
   * SKUs' stock rows (sorted), allocates each hold's lines from the locked figures, inserts
   * orders/lines/reservations, raises `reserved` with the SQL guard and adds one OrderPlaced
   * outbox row per order, in one transaction held only for Postgres' own work. A hold that
   * cannot be written is reported; the others still commit.
   */
  async writeHolds(holds: HoldToWrite[]): Promise<Map<string, WriteResult>> {
    try {
      return await this.callWriteBack(holds);
    } catch (err) {
      if (holds.length === 1) {
        const e = fromPgError(err);
        const guard = e instanceof InvalidDataError && e.sqlState === GUARD_VIOLATION;
        return new Map([[holds[0]!.holdId, { ok: false, reason: guard ? 'insufficient' : 'error', message: e.message }]]);
      }
      // Isolate whatever failed: each hold on its own.
      const out = new Map<string, WriteResult>();
      for (const h of holds) for (const [id, r] of await this.writeHolds([h])) out.set(id, r);
      return out;
    }
  }

  private async callWriteBack(holds: HoldToWrite[]): Promise<Map<string, WriteResult>> {
    const input = holds.map((h) => ({
      id: h.holdId,
      customer: h.customerId,
      idem: h.idempotencyKey,
      hash: h.hash,
      expires: h.expiresAt.toISOString(),
      items: h.items,
      ...(h.channel ? { channel: h.channel } : {}),
      ...(h.kits && h.kits.length > 0 ? { kits: h.kits } : {}),
    }));
    // A batch with kit purchases goes through the wrapper (migration 0017): the same write-back plus
    // the orders' kit rows and the kits on OrderPlaced, in the same transaction.
    const fn = holds.some((h) => h.kits && h.kits.length > 0) ? 'purchase_write_back_kits' : 'purchase_write_back';
    const r = await retry(
      () =>
        this.pool.query<{ out: WriteBackRow[] }>(`SELECT ${fn}($1::jsonb) AS out FROM ${movementContextFrom(2)}`, [
          JSON.stringify(input),
          encodeMovementContext(writeBackContext(holds)),
        ]),
      RETRY,
    );
    const out = new Map<string, WriteResult>();
    for (const row of r.rows[0]!.out) {
      if (row.ok) out.set(row.id, { ok: true, lines: row.lines, versions: new Map(Object.entries(row.versions).map(([k, v]) => [k, Number(v)])) });
      else if (row.reason === 'duplicate_key') out.set(row.id, { ok: false, reason: 'duplicate_key', existing: row.existing });
      else if (row.reason === 'exists') out.set(row.id, { ok: false, reason: 'exists', message: 'the hold was settled without this write-back (it took too long)' });
      else out.set(row.id, { ok: false, reason: 'insufficient', message: 'Postgres does not hold enough sellable units for this purchase' });
    }
    return out;
  }

  async getOrder(orderId: string, c: pg.Pool | pg.PoolClient = this.pool, lock = false): Promise<OrderView | null> {
    const o = await c.query<{ id: string; customer_id: string; status: OrderStatus; expires_at: Date; created_at: Date; updated_at: Date; channel_id: string | null }>(
      `SELECT id, customer_id, status, expires_at, created_at, updated_at, channel_id FROM orders WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
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
    // Units still promised against incoming stock (migration 0018, docs/incoming.md).
    const b = await c.query<{ sku: string; qty: number; eta: Date | null }>(`SELECT sku, qty, eta FROM backorders WHERE order_id = $1`, [orderId]);
    for (const x of b.rows) {
      const line = lines.get(x.sku);
      if (line) Object.assign(line, { backordered: x.qty, eta: x.eta ? x.eta.toISOString() : null });
    }
    const k = await c.query<{ kit_sku: string; qty: number; components: Array<{ sku: string; qty: number }> }>(
      'SELECT kit_sku, qty, components FROM order_kits WHERE order_id = $1 ORDER BY kit_sku',
      [orderId],
    );
    return {
      orderId: row.id,
      customerId: row.customer_id,
      status: row.status,
      expiresAt: row.expires_at.toISOString(),
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
      lines: [...lines.values()],
      channel: row.channel_id,
      ...(k.rows.length > 0 ? { kits: k.rows.map((x) => ({ sku: x.kit_sku, qty: x.qty, components: x.components })) } : {}),
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
  private async finish(c: pg.PoolClient, read: OrderView, to: 'confirmed' | 'cancelled' | 'expired'): Promise<OrderView> {
    // The caller holds the order's row lock. Lock its SKUs' stock rows too (sorted, as every stock
    // writer does), then read its lines again: a receipt converting this order's backorders holds
    // those rows for its whole transaction (receipt_receive, migration 0018), so what is released
    // or confirmed below is exactly what the order holds now.
    const skus = [...new Set(read.lines.map((l) => l.sku))].sort();
    if (skus.length > 0) await c.query(`SELECT 1 FROM stock_levels WHERE sku = ANY($1::text[]) ORDER BY sku, location_id FOR UPDATE`, [skus]);
    const order = (await this.getOrder(read.orderId, c)) ?? read;
    const res = order.lines.flatMap((l) => l.allocations.map((a) => ({ sku: l.sku, loc: a.locationId, qty: a.qty })));
    res.sort((a, b) => (a.sku === b.sku ? (a.loc < b.loc ? -1 : 1) : a.sku < b.sku ? -1 : 1));
    if (to === 'confirmed') {
      // Payment captured: the units leave the shelf. Both figures must still cover the order.
      const u = await c.query(
        `UPDATE stock_levels s SET reserved = s.reserved - d.qty, on_hand = s.on_hand - d.qty
         FROM unnest($1::text[], $2::text[], $3::int[]) AS d(sku, location_id, qty), ${movementContextFrom(4)}
         WHERE s.sku = d.sku AND s.location_id = d.location_id AND s.reserved >= d.qty AND s.on_hand >= d.qty`,
        [res.map((r) => r.sku), res.map((r) => r.loc), res.map((r) => r.qty), encodeMovementContext(orderContext(order, to))],
      );
      if (u.rowCount !== res.length) throw new Error(`order ${order.orderId}: its reservations are no longer in stock_levels (rows changed: ${u.rowCount}/${res.length})`);
    } else {
      // Releasing a hold never fails on figures someone changed by hand: `reserved` and
      // `backordered` fall by the order's units, never below 0, so one edited row cannot wedge
      // the expiry worker. One UPDATE over both, in (sku, location) order like every writer.
      const bo = await c.query<{ sku: string; location_id: string; qty: number }>(
        `DELETE FROM backorders WHERE order_id = $1 RETURNING sku, location_id, qty`,
        [order.orderId],
      );
      const deltas = new Map<string, { sku: string; loc: string; rqty: number; bqty: number }>();
      for (const r of res) deltas.set(`${r.sku}\u0000${r.loc}`, { sku: r.sku, loc: r.loc, rqty: r.qty, bqty: 0 });
      for (const x of bo.rows) {
        const k = `${x.sku}\u0000${x.location_id}`;
        const d = deltas.get(k) ?? { sku: x.sku, loc: x.location_id, rqty: 0, bqty: 0 };
        d.bqty += x.qty;
        deltas.set(k, d);
      }
      const rows = [...deltas.values()].sort((a, b) => (a.sku === b.sku ? (a.loc < b.loc ? -1 : 1) : a.sku < b.sku ? -1 : 1));
      await c.query(
        `UPDATE stock_levels s SET reserved = greatest(0, s.reserved - d.rqty), backordered = greatest(0, s.backordered - d.bqty)
         FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS d(sku, location_id, rqty, bqty), ${movementContextFrom(5)}
         WHERE s.sku = d.sku AND s.location_id = d.location_id`,
        [rows.map((r) => r.sku), rows.map((r) => r.loc), rows.map((r) => r.rqty), rows.map((r) => r.bqty), encodeMovementContext(orderContext(order, to))],
      );
    }
    const upd = await c.query<{ updated_at: Date }>(`UPDATE orders SET status = $2, updated_at = clock_timestamp() WHERE id = $1 RETURNING updated_at`, [order.orderId, to]);
    const next: OrderView = { ...order, status: to, updatedAt: upd.rows[0]!.updated_at.toISOString() };
    const type: OrderEventType = to === 'confirmed' ? 'OrderConfirmed' : to === 'cancelled' ? 'OrderCancelled' : 'ReservationExpired';
    await insertOutbox(c, [{ orderId: order.orderId, type, payload: eventPayload(type, next) }]);
    if (to !== 'confirmed') {
      // The release of the customer's limit count this transition owes, committed with it
      // (migration 0012): carried out right after the commit, or by the expiry worker.
      await c.query(`INSERT INTO customer_limit_releases (order_id, customer_id, items) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING`, [
        order.orderId,
        order.customerId,
        JSON.stringify(releaseItems(order.lines)),
      ]);
    }
    return next;
  }

  /**
   * Limit releases committed more than `olderThanMs` ago and not yet carried out (the process
   * that committed them crashed, or Redis was unavailable): the expiry worker's work list.
   */
  async pendingLimitReleases(olderThanMs: number, limit = 100): Promise<LimitRelease[]> {
    const { rows } = await this.pool.query<{ order_id: string; customer_id: string; items: GateItem[] }>(
      `SELECT order_id, customer_id, items FROM customer_limit_releases
        WHERE created_at <= clock_timestamp() - make_interval(secs => $1::double precision / 1000)
        ORDER BY created_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => ({ orderId: r.order_id, customerId: r.customer_id, items: r.items }));
  }

  /** A release was carried out in Redis: forget it. */
  async limitReleased(orderId: string): Promise<void> {
    await this.pool.query(`DELETE FROM customer_limit_releases WHERE order_id = $1`, [orderId]);
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
  async settleHold(hold: { holdId: string; customerId: string }): Promise<HoldSettlement> {
    // A hold may be a change of an order's quantities (migration 0013, purchase/hold-lifecycle.ts):
    // its claim is in order_changes. Claim it as abandoned; losing the claim to an applied change
    // means that change committed.
    const claim = await this.pool.query(`INSERT INTO order_changes (id, state) VALUES ($1, 'abandoned') ON CONFLICT (id) DO NOTHING`, [hold.holdId]);
    if (claim.rowCount === 0) {
      const ch = await this.pool.query<{ state: string; versions: Record<string, number | string> | null }>(`SELECT state, versions FROM order_changes WHERE id = $1`, [hold.holdId]);
      const applied = ch.rows[0];
      if (applied?.state === 'applied') return { abandoned: false, status: 'reserved', versions: new Map(Object.entries(applied.versions ?? {}).map(([k, v]) => [k, Number(v)])) };
    }
    const ins = await this.pool.query(
      `INSERT INTO orders (id, customer_id, status, expires_at) VALUES ($1, $2, 'abandoned', clock_timestamp()) ON CONFLICT (id) DO NOTHING`,
      [hold.holdId, hold.customerId],
    );
    if (ins.rowCount === 1) return { abandoned: true };
    const o = await this.pool.query<{ status: OrderStatus }>(`SELECT status FROM orders WHERE id = $1`, [hold.holdId]);
    const lines = await this.pool.query<{ sku: string; version: string }>(`SELECT sku, version FROM order_lines WHERE order_id = $1`, [hold.holdId]);
    return { abandoned: false, status: o.rows[0]?.status ?? 'abandoned', versions: new Map(lines.rows.map((r) => [r.sku, Number(r.version)])) };
  }

  /** The customer of an order (null: no such order); abandoned orders do not exist for clients. */
  async orderCustomer(orderId: string): Promise<string | null> {
    const r = await this.pool.query<{ customer_id: string }>(`SELECT customer_id FROM orders WHERE id = $1 AND status <> 'abandoned'`, [orderId]);
    return r.rows[0]?.customer_id ?? null;
  }

  /** Idempotency keys are scoped by customer (migration 0010). */
  async findByIdempotencyKey(customerId: string, key: string): Promise<{ orderId: string; hash: string | null } | null> {
    const r = await this.pool.query<{ id: string; request_hash: string | null }>(`SELECT id, request_hash FROM orders WHERE customer_id = $1 AND idempotency_key = $2`, [customerId, key]);
    const row = r.rows[0];
    return row ? { orderId: row.id, hash: row.request_hash } : null;
  }
}
