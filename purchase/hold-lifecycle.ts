/**
 * A hold after it was placed (docs/purchase-path.md, "Hold lifecycle"): extend it (bounded by
 * PURCHASE_HOLD_MAX_LIFETIME_S) and change its quantities. Releasing a hold early is the cancel
 * (orders.ts). A change that takes more units asks the gate first, as a hold of its own (the
 * change hold: reserve, then the write-back `hold_resize`, then settle or release, exactly like a
 * purchase, so the reaper covers a gateway that dies in between); a change that gives units back
 * only writes Postgres (the units return to the gate through CDC, like a cancel) and carries out
 * the limit release it committed.
 */
import { errorMessage, HoldLifetimeExceededError, InvalidBodyError, InvalidStateError, OrderChangedError, SoldOutError, WriteBackFailedError } from '../lib/errors.ts';
import { reserveRefusal } from './domain/decide.ts';
import { planChange } from './domain/hold-lifecycle.ts';
import { scopedIdempotencyKey } from './domain/idempotency.ts';
import { orderBody, refuse, RETRY_AFTER_S, unknownOrder, type Outcome } from './domain/outcome.ts';
import type { GateItem, OrderStatus, PurchasePorts } from './domain/ports.ts';
import { checkOrderId, mayAccess, ORDER_SCOPES, type Caller } from './orders.ts';

/** A change that keeps meeting concurrent changes of the same hold is answered 409 order_changed after this many tries. */
const CHANGE_ATTEMPTS = 3;

export type HoldLifecyclePorts = Pick<PurchasePorts, 'gate' | 'orders' | 'holds' | 'clock' | 'newId' | 'logger' | 'config'>;

function invalidState(orderId: string, status: OrderStatus, verb: string): Outcome {
  return refuse(new InvalidStateError(`order ${orderId} is ${status} and cannot be ${verb}`, { details: { orderId, status } }));
}

export class HoldLifecycle {
  constructor(
    private readonly ports: HoldLifecyclePorts,
    /** Carries out a committed limit release (workers.ts `releaseLimit`; never throws). */
    private readonly releaseLimit: (o: { orderId: string; customerId: string; lines: GateItem[] }) => Promise<void>,
  ) {}

  /**
   * POST /v1/orders/:id/extend: its customer (or a storefront acting for it) or a service with
   * `orders:confirm` (a payment service that needs longer to capture). The new expiry is
   * now + seconds, clamped to the order's creation + PURCHASE_HOLD_MAX_LIFETIME_S.
   */
  async extend(orderId: string, seconds: number, caller: Caller): Promise<Outcome> {
    const bad = checkOrderId(orderId);
    if (bad) return bad;
    const owner = await this.ports.orders.orderCustomer(orderId);
    if (owner === null || !mayAccess(caller, owner, ORDER_SCOPES.extended)) return unknownOrder(orderId);
    const r = await this.ports.holds.extend(orderId, seconds, this.ports.config.holdMaxLifetimeMs);
    if (!r.ok) return r.reason === 'unknown_order' ? unknownOrder(orderId) : invalidState(orderId, r.status, 'extended');
    if (r.plan.kind === 'at_limit') {
      return refuse(
        new HoldLifetimeExceededError(`order ${orderId} already expires at its maximum lifetime (${r.maxExpiresAt})`, {
          details: { orderId, expiresAt: r.order.expiresAt, maxExpiresAt: r.maxExpiresAt },
        }),
      );
    }
    return { status: 200, body: { ...orderBody(r.order), maxExpiresAt: r.maxExpiresAt, extended: r.plan.kind === 'extend', clamped: r.plan.kind === 'extend' && r.plan.clamped } };
  }

  /**
   * PATCH /v1/orders/:id: the order's customer (or a storefront acting for it) only: an increase
   * is a purchase and counts against that customer's limit. The body states target quantities, so
   * a retry of a change that went through finds nothing left to do (200, the same order).
   */
  async change(orderId: string, items: GateItem[], caller: Caller, address: string): Promise<Outcome> {
    const bad = checkOrderId(orderId);
    if (bad) return bad;
    const { orders, gate, holds, config, logger: log } = this.ports;
    const owner = await orders.orderCustomer(orderId);
    if (owner === null || caller.customerId !== owner) return unknownOrder(orderId);
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      const order = await orders.getOrder(orderId);
      if (!order || order.status === 'abandoned') return unknownOrder(orderId);
      if (order.status !== 'reserved') return invalidState(orderId, order.status, 'changed');
      if (Date.parse(order.expiresAt) <= this.ports.clock.now()) return invalidState(orderId, 'expired', 'changed');
      // A line with units promised against incoming stock keeps its quantities until they are
      // received (docs/incoming.md): hold_resize moves reservations only.
      if (order.lines.some((l) => (l.backordered ?? 0) > 0)) {
        return refuse(new InvalidStateError(`order ${orderId} has backordered units and cannot be changed until they are received; cancel it instead`, { details: { orderId, status: order.status, reason: 'backordered' } }));
      }
      // A kit's components move together (docs/kits.md): resizing one line would break the kit.
      if (order.kits && order.kits.length > 0) {
        const kits = order.kits.map((k) => k.sku);
        return refuse(new InvalidBodyError(`items: order ${orderId} was bought with kits (${kits.join(', ')}); its lines cannot be resized: cancel it and buy again`, { details: { field: 'items', kits } }));
      }
      const plan = planChange(order.lines, items);
      if (!plan.ok) return refuse(new InvalidBodyError(`${plan.field}: ${plan.message}`, { details: { field: plan.field } }));
      if (plan.lines.length === 0) return { status: 200, body: orderBody(order) };
      const changeId = this.ports.newId();
      const scopedKey = scopedIdempotencyKey(owner, `change:${changeId}`);
      const hold = plan.increases.length > 0 ? { holdId: changeId, idemKey: gate.idemKey(scopedKey, plan.increases), customerId: owner, items: plan.increases } : undefined;
      if (hold) {
        // An order sold on a sales channel grows from that channel's figure (docs/channels.md).
        const g = await gate.reserve({ holdId: changeId, idempotencyKey: scopedKey, hash: changeId, customerId: owner, address, items: hold.items, now: this.ports.clock.now(), channel: order.channel ?? null });
        if (g.kind === 'replay') throw new Error(`a fresh change id ${changeId} was replayed by the gate`);
        if (g.kind !== 'ok') return reserveRefusal(g, hold.items, owner, config.maxPerCustomer);
      }
      const w = await holds.resize({ id: changeId, orderId, lines: plan.lines });
      if (w.ok) {
        if (hold) {
          await gate.settle(hold, w.versions, '').catch((err: unknown) => log.warn({ err: errorMessage(err), orderId, changeId }, 'settle of a hold change failed; the reaper will settle it'));
        }
        if (w.released.length > 0) await this.releaseLimit({ orderId: changeId, customerId: owner, lines: w.released });
        const changed = await orders.getOrder(orderId);
        return { status: 200, body: orderBody(changed ?? { ...order, lines: w.lines }) };
      }
      if (hold) await gate.release(hold).catch((err: unknown) => log.warn({ err: errorMessage(err), orderId, changeId }, 'release of a hold change failed; the reaper will release it'));
      switch (w.reason) {
        case 'conflict':
        case 'unchanged':
          continue; // read the order again: a concurrent change (or this one's retry) got there first
        case 'unknown_order':
          return unknownOrder(orderId);
        case 'invalid_state':
          return invalidState(orderId, w.status, 'changed');
        case 'insufficient':
          log.warn({ orderId, changeId, items: plan.increases }, 'the gate accepted a hold change Postgres could not cover (view ahead of Postgres); units returned');
          return refuse(new SoldOutError('the change could not be covered by the stock in Postgres; nothing changed', { details: { reason: 'database_guard' } }));
        case 'exists':
        case 'error':
          log.warn({ orderId, changeId, reason: w.reason }, 'hold change write-back failed; units returned to the gate');
          return refuse(new WriteBackFailedError('the change could not be recorded; nothing changed, retry', { details: { reason: w.reason }, retryAfterS: RETRY_AFTER_S }));
      }
    }
    return refuse(new OrderChangedError(`order ${orderId} kept changing while this change was decided; nothing changed, read it and retry`, { details: { orderId } }));
  }
}
