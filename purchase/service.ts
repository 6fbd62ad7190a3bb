/**
 * The purchase path inside a gateway, as one facade over its parts (docs/purchase-path.md,
 * "Module layout"): the gate decision (domain/decide.ts), the waiting room (waiting-room.ts),
 * orders (orders.ts) and the background workers (workers.ts), all given one `PurchasePorts`
 * object (purchase/wiring.ts builds the real one). HTTP lives in gateway/purchase-http.ts; this
 * module answers in terms of `Outcome` and never throws for anything a client did.
 */
import { errorMessage, UnavailableError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { decidePurchase } from './domain/decide.ts';
import { scopedIdempotencyKey } from './domain/idempotency.ts';
import { keyReused, outcomeKind, refuse, replayed, type Outcome } from './domain/outcome.ts';
import type { Fate, GatePort, OrdersPort, PurchasePorts, WaitingRoomPort } from './domain/ports.ts';
import { requestHash, type PurchaseRequest } from './domain/request.ts';
import { HoldLifecycle } from './hold-lifecycle.ts';
import { Orders, type Caller } from './orders.ts';
import { WaitingRoom } from './waiting-room.ts';
import { PurchaseWorkers } from './workers.ts';

export type { Outcome } from './domain/outcome.ts';
export type { PurchaseEvents } from './domain/ports.ts';
export { ORDER_SCOPES, type Caller } from './orders.ts';
export type { Fate };

export class PurchaseService {
  readonly gate: GatePort;
  readonly store: OrdersPort;
  readonly waitingRoom: WaitingRoomPort;
  private readonly room: WaitingRoom;
  private readonly orders: Orders;
  private readonly holds: HoldLifecycle;
  private readonly workers: PurchaseWorkers;
  private readonly log: Logger;
  /** Requests in flight in this process by scoped Idempotency-Key: a duplicate shares the first's answer. */
  private readonly inProcess = new Map<string, { hash: string; done: Promise<Outcome> }>();

  constructor(private readonly ports: PurchasePorts) {
    this.gate = ports.gate;
    this.store = ports.orders;
    this.waitingRoom = ports.waitingRoom;
    this.log = ports.logger;
    this.workers = new PurchaseWorkers(ports);
    this.orders = new Orders({ orders: ports.orders, releaseLimit: (o) => this.workers.releaseLimit(o) });
    this.holds = new HoldLifecycle(ports, (o) => this.workers.releaseLimit(o));
    this.room = new WaitingRoom(ports, (r) =>
      decidePurchase(ports, { req: { customerId: r.customerId, items: r.items, channel: r.channel ?? null, ...(r.kits ? { kits: r.kits } : {}) }, idempotencyKey: r.key, scopedKey: scopedIdempotencyKey(r.customerId, r.key), hash: r.hash, address: r.address, rateTaken: true }),
    );
  }

  /** POST /v1/purchases, after the body and key were validated and the customer resolved from the credential. */
  async purchase(req: PurchaseRequest, idempotencyKey: string, address: string): Promise<Outcome> {
    const hash = requestHash(req);
    const scopedKey = scopedIdempotencyKey(req.customerId, idempotencyKey);
    // The same key arriving twice at this process while the first is in flight: one answer.
    const running = this.inProcess.get(scopedKey);
    if (running) {
      if (running.hash !== hash) return this.count(keyReused());
      const o = await running.done;
      return o.status === 201 ? replayed(o) : o;
    }
    const hot = this.room.hotSku(req);
    const decision = hot ? this.room.enter(hot, req, idempotencyKey, hash, address) : decidePurchase(this.ports, { req, idempotencyKey, scopedKey, hash, address });
    const done = decision.catch((err: unknown) => {
      this.log.error({ err: errorMessage(err) }, 'purchase failed');
      return refuse(new UnavailableError('the purchase could not be decided; nothing was reserved, retry with the same Idempotency-Key', { cause: err }));
    });
    this.inProcess.set(scopedKey, { hash, done });
    try {
      return this.count(await done);
    } finally {
      this.inProcess.delete(scopedKey);
    }
  }

  /** GET /v1/orders/:id */
  getOrder(orderId: string, caller: Caller): Promise<Outcome> {
    return this.orders.get(orderId, caller);
  }

  /** POST /v1/orders/:id/confirm | cancel */
  transition(orderId: string, to: 'confirmed' | 'cancelled', caller: Caller): Promise<Outcome> {
    return this.orders.transition(orderId, to, caller);
  }

  /** POST /v1/orders/:id/extend, after the body was validated. */
  extend(orderId: string, seconds: number, caller: Caller): Promise<Outcome> {
    return this.holds.extend(orderId, seconds, caller);
  }

  /** PATCH /v1/orders/:id (new quantities of the hold's lines), after the body was validated. */
  changeHold(orderId: string, items: Array<{ sku: string; qty: number }>, caller: Caller, address: string): Promise<Outcome> {
    return this.holds.change(orderId, items, caller, address);
  }

  /** The ticket a reference opens for this caller (the customer it was issued to, or a service acting for it), or null. */
  openTicket(sku: string, ref: string, caller: Caller): Promise<number | null> {
    return this.room.openTicket(sku, ref, caller.customerId);
  }

  /** GET /v1/tickets/:sku/:ref, for a ticket `openTicket` opened. */
  ticketState(sku: string, ticket: number): Promise<Outcome> {
    return this.room.ticketState(sku, ticket);
  }

  /** A ticket's fate once decided (kept for a while), else null. */
  fate(sku: string, ticket: number): Promise<Fate | null> {
    return this.waitingRoom.getFate(sku, ticket);
  }

  /** Calls `onFate` for every fate any gateway decides. */
  subscribeFates(onFate: (f: Fate) => void): Promise<void> {
    return this.waitingRoom.subscribe(onFate);
  }

  /** One pass of the waiting-room worker over the hot SKUs. */
  admitOnce(maxPerSku?: number): Promise<number> {
    return this.room.admitOnce(maxPerSku);
  }

  /** Limit releases committed at least `olderThanMs` ago and still pending. */
  releasePending(olderThanMs?: number): Promise<number> {
    return this.workers.releasePending(olderThanMs);
  }

  /** One pass of the expiry worker. */
  expireOnce(): Promise<number> {
    return this.workers.expireOnce();
  }

  /** One pass of the reaper. */
  reapOnce(now?: number): Promise<{ released: number; settled: number }> {
    return this.workers.reapOnce(now);
  }

  /** Starts the expiry worker, the reaper and, with hot SKUs, the waiting-room worker. */
  start(): void {
    const every = this.ports.config.expiryIntervalMs;
    this.workers.start(this.room.hasHotSkus ? [{ name: 'waiting-room', pass: () => this.room.admitOnce(), ms: Math.min(every, 100) }] : []);
  }

  stop(): void {
    this.room.stop();
    this.workers.stop();
  }

  private count(o: Outcome): Outcome {
    this.ports.events?.outcome(outcomeKind(o));
    return o;
  }
}
