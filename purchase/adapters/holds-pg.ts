/**
 * The hold lifecycle's Postgres side (docs/purchase-path.md, "Hold lifecycle"): extending a hold
 * and writing back a change of its quantities, each in one transaction with its outbox row
 * (OrderExtended, OrderChanged). Races with the expiry worker are decided here by the order's row
 * lock: whichever transaction locks the order first wins, the other sees the outcome.
 */
import type pg from 'pg';
import { fromPgError } from '../../lib/driver-errors.ts';
import { InvalidDataError } from '../../lib/errors.ts';
import { retry } from '../../lib/retry.ts';
import { planExtend, type ExtendResult, type HoldsPort, type LineChange, type ResizeResult } from '../domain/hold-lifecycle.ts';
import type { GateItem, OrderLine, OrderStatus } from '../domain/ports.ts';
import { eventPayload, GUARD_VIOLATION, inTx, insertOutbox, RETRY, type OrdersStore } from './orders-pg.ts';
import { encodeMovementContext, movementContextFrom } from '../../lib/contracts/movements.ts';

type ResizeRow =
  | { ok: true; lines: OrderLine[]; versions: Record<string, number | string>; released: GateItem[] }
  | { ok: false; reason: 'unknown_order' | 'unchanged' | 'conflict' | 'exists' | 'insufficient' }
  | { ok: false; reason: 'invalid_state'; status: OrderStatus };

export class HoldsStore implements HoldsPort {
  constructor(private readonly deps: { pool: pg.Pool; orders: OrdersStore }) {}

  /**
   * Locks the order, decides with `planExtend` on Postgres' clock (every gateway agrees on it)
   * and, when the expiry moves, updates it with an OrderExtended outbox row. A hold past its
   * expiry is not touched (the expiry worker expires it): an extend that loses that race changes
   * nothing, and one that wins moves the expiry out of the worker's reach.
   */
  async extend(orderId: string, seconds: number, maxLifetimeMs: number): Promise<ExtendResult> {
    return inTx(this.deps.pool, async (c) => {
      const r = await c.query<{ status: OrderStatus; created_at: Date; expires_at: Date; now: Date }>(
        `SELECT status, created_at, expires_at, clock_timestamp() AS now FROM orders WHERE id = $1 FOR UPDATE`,
        [orderId],
      );
      const row = r.rows[0];
      if (!row || row.status === 'abandoned') return { ok: false, reason: 'unknown_order' };
      if (row.status !== 'reserved') return { ok: false, reason: 'invalid_state', status: row.status };
      if (row.expires_at.getTime() <= row.now.getTime()) return { ok: false, reason: 'invalid_state', status: 'expired' };
      const plan = planExtend({ nowMs: row.now.getTime(), createdAtMs: row.created_at.getTime(), expiresAtMs: row.expires_at.getTime(), seconds, maxLifetimeMs });
      const maxExpiresAt = new Date(row.created_at.getTime() + maxLifetimeMs).toISOString();
      if (plan.kind === 'extend') {
        await c.query(`UPDATE orders SET expires_at = $2, updated_at = clock_timestamp() WHERE id = $1`, [orderId, new Date(plan.expiresAtMs)]);
      }
      const order = (await this.deps.orders.getOrder(orderId, c))!;
      if (plan.kind === 'extend') await insertOutbox(c, [{ orderId, type: 'OrderExtended', payload: { ...eventPayload('OrderExtended', order), maxExpiresAt } }]);
      return { ok: true, order, plan, maxExpiresAt };
    });
  }

  /** One call of `hold_resize` (migration 0013); a refused stock guard rolls it back and is reported as `insufficient`. */
  async resize(change: { id: string; orderId: string; lines: LineChange[] }): Promise<ResizeResult> {
    let row: ResizeRow;
    try {
      const ctx = encodeMovementContext({ kind: 'resize', source: 'purchase', reference: `order:${change.orderId}`, details: { changeId: change.id } });
      const r = await retry(() => this.deps.pool.query<{ out: ResizeRow }>(`SELECT hold_resize($1::jsonb) AS out FROM ${movementContextFrom(2)}`, [JSON.stringify(change), ctx]), RETRY);
      row = r.rows[0]!.out;
    } catch (err) {
      const e = fromPgError(err);
      if (e instanceof InvalidDataError && e.sqlState === GUARD_VIOLATION) return { ok: false, reason: 'insufficient' };
      return { ok: false, reason: 'error', message: e.message };
    }
    if (!row.ok) return row;
    return { ok: true, lines: row.lines, released: row.released, versions: new Map(Object.entries(row.versions).map(([k, v]) => [k, Number(v)])) };
  }
}
