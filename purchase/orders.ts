/**
 * Orders after the purchase: reading one and its transitions (confirm, cancel), with who may do
 * what (docs/purchase-path.md, "Who buys"). A cancel, or a confirm that finds the order expired,
 * carries out the limit release its transaction committed (workers.ts `releaseLimit`).
 */
import { InvalidOrderIdError, InvalidStateError } from '../lib/errors.ts';
import { orderBody, refuse, unknownOrder, type Outcome } from './domain/outcome.ts';
import type { OrdersPort, OrderView } from './domain/ports.ts';

/** Who asks for an order or a ticket: the customer it is or acts for, and its scopes (gateway/domain/identity.ts). */
export interface Caller {
  customerId: string | undefined;
  scopes: ReadonlySet<string>;
}

/**
 * Scopes a service needs on another customer's order. Extending a hold takes `orders:confirm`:
 * the payment service extends a hold while a payment is pending. Changing quantities takes no
 * scope: only the order's customer may (docs/security.md).
 */
export const ORDER_SCOPES = { read: 'orders:read', confirmed: 'orders:confirm', cancelled: 'orders:cancel', extended: 'orders:confirm' } as const;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function mayAccess(caller: Caller, owner: string, scope: string): boolean {
  return caller.customerId === owner || caller.scopes.has(scope);
}

/** The answer for an order id that is not a UUID, or undefined when it is one. */
export function checkOrderId(orderId: string): Outcome | undefined {
  return UUID_RE.test(orderId) ? undefined : refuse(new InvalidOrderIdError('an order id is a UUID', { details: { field: 'orderId' } }));
}

export class Orders {
  constructor(
    private readonly deps: {
      orders: OrdersPort;
      /** Carries out a committed limit release (never throws: a failure is left to the expiry worker). */
      releaseLimit(o: OrderView): Promise<void>;
    },
  ) {}

  /**
   * GET /v1/orders/:id: for its customer (or a service acting for it) and services with
   * `orders:read`; anyone else gets the same 404 as for an order that does not exist.
   */
  async get(orderId: string, caller: Caller): Promise<Outcome> {
    const bad = checkOrderId(orderId);
    if (bad) return bad;
    const o = await this.deps.orders.getOrder(orderId);
    if (!o || o.status === 'abandoned' || !mayAccess(caller, o.customerId, ORDER_SCOPES.read)) return unknownOrder(orderId);
    return { status: 200, body: orderBody(o) };
  }

  /** POST /v1/orders/:id/confirm | cancel: its customer, or a service with `orders:confirm` / `orders:cancel`. */
  async transition(orderId: string, to: 'confirmed' | 'cancelled', caller: Caller): Promise<Outcome> {
    const bad = checkOrderId(orderId);
    if (bad) return bad;
    const { orders } = this.deps;
    // An order's customer never changes: checking before the transaction's own read is safe.
    const owner = await orders.orderCustomer(orderId);
    if (owner === null || !mayAccess(caller, owner, ORDER_SCOPES[to])) return unknownOrder(orderId);
    const r = await orders.transition(orderId, to);
    if (!r.ok && r.reason === 'unknown_order') return unknownOrder(orderId);
    if (!r.ok) {
      if (r.status === 'abandoned') return unknownOrder(orderId);
      if (r.status === 'expired') await this.deps.releaseLimit(r.order);
      const verb = to === 'confirmed' ? 'confirmed' : 'cancelled';
      return refuse(new InvalidStateError(`order ${orderId} is ${r.status} and cannot be ${verb}`, { details: { orderId, status: r.status } }));
    }
    if (to === 'cancelled') await this.deps.releaseLimit(r.order);
    return { status: 200, body: orderBody(r.order) };
  }
}
