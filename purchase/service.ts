/**
 * The purchase path as a service inside a gateway: gate decision (Redis), group-committed
 * write-back (Postgres + outbox), settle/release of the hold, order transitions, and the two
 * background workers (hold expiry, reaper of unsettled holds). HTTP lives in gateway/purchase-http.ts;
 * this module answers in terms of `Outcome` (status + JSON body + headers) and never throws for
 * anything a client did.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import type { Config } from '../lib/config.ts';
import { errorResponse } from '../lib/error-response.ts';
import {
  CustomerLimitError,
  errorMessage,
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  InvalidOrderIdError,
  InvalidStateError,
  RateLimitedError,
  RebuildingError,
  SoldOutError,
  UnavailableError,
  UnknownOrderError,
  UnknownSkuError,
  UnknownTicketError,
  WriteBackFailedError,
  type PlatformError,
} from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { Gate, scopedIdempotencyKey, type GateItem, type HoldRecord } from './adapters/gate.ts';
import { OrdersStore, releaseItems, type OrderLine, type OrderView } from './adapters/orders-pg.ts';
import { WaitingRoomStore, type Fate, type QueuedRequest } from './adapters/waiting-room.ts';
import { requestHash, type PurchaseRequest } from './domain/request.ts';
import { WriteBackQueue } from './write-back-queue.ts';

export interface Outcome {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface PurchaseEvents {
  outcome(kind: string): void;
  writeBatch(size: number, seconds: number): void;
}

/** A refusal as the client's answer: status, body and headers come from the error (lib/error-response.ts). */
function refuse(err: PlatformError): Outcome {
  return errorResponse(err);
}

/** The same Idempotency-Key with a different request: the one answer, wherever it is noticed. */
function keyReused(): Outcome {
  return refuse(new IdempotencyKeyReusedError('this Idempotency-Key was used with a different request', { details: { field: 'Idempotency-Key' } }));
}

/** An order the caller may not see answers exactly like one that does not exist. */
function unknownOrder(orderId: string): Outcome {
  return refuse(new UnknownOrderError(`no order ${orderId}`, { details: { orderId } }));
}

/** Seconds before a client retries a purchase that could not be decided or recorded now. */
const RETRY_AFTER_S = 1;

export function placedBody(orderId: string, expiresAt: string, lines: OrderLine[]): Record<string, unknown> {
  return { orderId, status: 'reserved', expiresAt, items: lines };
}

function orderBody(o: OrderView): Record<string, unknown> {
  return { orderId: o.orderId, customerId: o.customerId, status: o.status, expiresAt: o.expiresAt, createdAt: o.createdAt, updatedAt: o.updatedAt, items: o.lines };
}

/** Who asks for an order or a ticket: the customer it is or acts for, and its scopes (gateway/domain/identity.ts). */
export interface Caller {
  customerId: string | undefined;
  scopes: ReadonlySet<string>;
}

/** Scopes a service needs on another customer's order. */
export const ORDER_SCOPES = { read: 'orders:read', confirmed: 'orders:confirm', cancelled: 'orders:cancel' } as const;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function mayAccess(caller: Caller, owner: string, scope: string): boolean {
  return caller.customerId === owner || caller.scopes.has(scope);
}

function limited(scope: 'customer' | 'address', retryAfterMs: number): Outcome {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return refuse(new RateLimitedError(`too many purchase attempts from this ${scope}; retry after ${s} s`, { details: { scope, retryAfterMs }, retryAfterS: s }));
}

export class PurchaseService {
  readonly gate: Gate;
  readonly store: OrdersStore;
  readonly waitingRoom: WaitingRoomStore;
  private readonly hot: Set<string>;
  private readonly queue: WriteBackQueue;
  private readonly inProcess = new Map<string, { hash: string; done: Promise<Outcome> }>();
  private readonly log: Logger;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly deps: { redis: Redis; pool: pg.Pool; config: Readonly<Config>; logger: Logger; events?: PurchaseEvents },
  ) {
    const p = deps.config.purchase;
    this.log = deps.logger.child({ component: 'purchase' });
    this.gate = new Gate({
      redis: deps.redis,
      prefix: deps.config.redis.prefix,
      limits: {
        maxPerCustomer: p.maxPerCustomer,
        rateCustomer: p.rateCustomer,
        rateAddress: p.rateAddress,
        idempotencyTtlS: p.idempotencyTtlS,
        settleTimeoutMs: p.settleTimeoutMs,
        holdTtlMs: p.holdTtlMs,
      },
    });
    this.store = new OrdersStore(deps.pool);
    this.waitingRoom = new WaitingRoomStore(deps.redis, deps.config.redis.prefix, p.waitingRoomFactor, p.idempotencyTtlS, p.settleTimeoutMs);
    this.hot = new Set(p.hotSkus);
    this.queue = new WriteBackQueue(this.store, {
      maxBatch: 200,
      maxConcurrent: Math.max(1, Math.min(4, p.pgPool - 1)),
      onBatch: (n, s) => deps.events?.writeBatch(n, s),
    });
  }

  /** POST /v1/purchases, after the body and key were validated and the customer resolved from the credential. */
  async purchase(req: PurchaseRequest, idempotencyKey: string, address: string): Promise<Outcome> {
    const hash = requestHash(req);
    const scoped = scopedIdempotencyKey(req.customerId, idempotencyKey);
    // The same key arriving twice at this process while the first is in flight: one answer.
    const running = this.inProcess.get(scoped);
    if (running) {
      if (running.hash !== hash) return this.count(keyReused());
      const o = await running.done;
      return o.status === 201 ? { ...o, headers: { ...o.headers, 'Idempotent-Replayed': 'true' } } : o;
    }
    const hot = req.items.find((i) => this.hot.has(i.sku));
    const decision = hot ? this.viaWaitingRoom(hot.sku, req, idempotencyKey, hash, address) : this.decide(req, idempotencyKey, hash, address);
    const done = decision.catch((err: unknown) => {
      this.log.error({ err: errorMessage(err) }, 'purchase failed');
      return refuse(new UnavailableError('the purchase could not be decided; nothing was reserved, retry with the same Idempotency-Key', { cause: err }));
    });
    this.inProcess.set(scoped, { hash, done });
    try {
      return this.count(await done);
    } finally {
      this.inProcess.delete(scoped);
    }
  }

  /**
   * Purchases that include a hot SKU draw a numbered ticket first (docs/purchase-path.md,
   * "Waiting room"): admitted tickets go to the gate now, the others are answered at once with
   * sold out or waitlisted (202), and learn their fate later over `GET /v1/tickets/...`.
   */
  private async viaWaitingRoom(sku: string, req: PurchaseRequest, key: string, hash: string, address: string): Promise<Outcome> {
    const items = req.items.map((i) => ({ sku: i.sku, qty: i.qty }));
    const p = this.deps.config.purchase;
    const t = await this.waitingRoom.ticket(sku, { key, hash, customerId: req.customerId, items, address }, scopedIdempotencyKey(req.customerId, key), p.idempotencyTtlS, p);
    switch (t.kind) {
      case 'limited':
        return limited(t.scope, t.retryAfterMs);
      case 'unknown':
        return refuse(new UnknownSkuError(`no stock is known for SKU ${sku}`, { details: { field: `items[${req.items.findIndex((i) => i.sku === sku)}].sku`, sku } }));
      case 'known': {
        if (t.hash !== hash) return keyReused();
        const fate = await this.waitingRoom.getFate(sku, t.ticket);
        if (fate) return { status: fate.status, body: fate.body, headers: { 'Idempotent-Replayed': 'true' } };
        return this.waitlisted(sku, t.ticket, null, req.customerId);
      }
      case 'sold_out': {
        // No ticket was drawn and nothing is stored: a retry is evaluated afresh.
        const requested = items.find((i) => i.sku === sku)?.qty ?? 0;
        return refuse(new SoldOutError(`SKU ${sku} is sold out`, { details: { sku, requested, available: 0 } }));
      }
      case 'waitlisted':
        return this.waitlisted(sku, t.ticket, t.position, req.customerId);
      case 'admit': {
        try {
          return await this.decideTicket(sku, t.ticket, { ticket: t.ticket, key, hash, customerId: req.customerId, items, address });
        } finally {
          await this.waitingRoom.done(sku, t.ticket);
        }
      }
    }
  }

  /** A waitlisted ticket's fate when the SKU sold out: recorded (briefly) for the ticket. */
  private async ticketSoldOut(sku: string, r: QueuedRequest): Promise<Outcome> {
    const { ticket } = r;
    const requested = r.items.find((i) => i.sku === sku)?.qty ?? 0;
    const o = refuse(new SoldOutError(`SKU ${sku} is sold out (ticket ${ticket})`, { details: { sku, requested, available: 0, ticket } }));
    await this.waitingRoom.setFate({ sku, ticket, status: o.status, body: o.body }, this.deps.config.purchase.refusalTtlS, scopedIdempotencyKey(r.customerId, r.key));
    return o;
  }

  private async waitlisted(sku: string, ticket: number, position: number | null, customerId: string): Promise<Outcome> {
    const at = `/v1/tickets/${encodeURIComponent(sku)}/${await this.waitingRoom.ticketRef(sku, ticket, customerId)}`;
    return {
      status: 202,
      body: { status: 'waitlisted', sku, ticket, ...(position === null ? {} : { position }), fate: at, events: `${at}/events` },
      headers: { Location: at },
    };
  }

  /** Runs an admitted ticket's purchase through the gate and records its fate. */
  private async decideTicket(sku: string, ticket: number, r: QueuedRequest): Promise<Outcome> {
    // The ticket took the rate limits when it was drawn.
    const o = await this.decide({ customerId: r.customerId, items: r.items }, r.key, r.hash, r.address, true);
    const body = { ...o.body, ticket };
    await this.waitingRoom.setFate({ sku, ticket, status: o.status, body }, this.deps.config.purchase.refusalTtlS, scopedIdempotencyKey(r.customerId, r.key));
    return { ...o, body };
  }

  /** One pass of the waiting-room worker over the hot SKUs. */
  async admitOnce(maxPerSku = 100): Promise<number> {
    let decided = 0;
    for (const sku of this.hot) {
      for (let i = 0; i < maxPerSku && !this.stopped; i++) {
        const a = await this.waitingRoom.admitNext(sku);
        if (a.kind === 'empty' || a.kind === 'wait') break;
        if (a.kind === 'sold_out') {
          for (const r of a.requests) {
            await this.ticketSoldOut(sku, r);
            decided++;
          }
          break;
        }
        try {
          const o = await this.decideTicket(sku, a.request.ticket, a.request);
          this.count(o);
        } finally {
          await this.waitingRoom.done(sku, a.request.ticket);
        }
        decided++;
      }
    }
    return decided;
  }

  /**
   * The ticket a reference opens for this caller (the customer it was issued to, or a service
   * acting for that customer), or null: then the ticket "does not exist" for the caller.
   */
  async openTicket(sku: string, ref: string, caller: Caller): Promise<number | null> {
    return this.waitingRoom.openRef(sku, ref, caller.customerId);
  }

  /** GET /v1/tickets/:sku/:ref, for a ticket `openTicket` opened. */
  async ticketState(sku: string, ticket: number): Promise<Outcome> {
    const fate = await this.waitingRoom.getFate(sku, ticket);
    if (fate) return { status: 200, body: { sku, ticket, decided: true, outcome: { status: fate.status, body: fate.body } } };
    if (!Number.isSafeInteger(ticket) || ticket < 1 || ticket > (await this.waitingRoom.issued(sku))) {
      return refuse(new UnknownTicketError(`no ticket ${ticket} for SKU ${sku}`, { details: { sku, ticket } }));
    }
    // Decided, and its fate no longer kept (refusals are kept PURCHASE_REFUSAL_TTL_S).
    if (!(await this.waitingRoom.isPending(sku, ticket))) {
      return refuse(new UnknownTicketError(`ticket ${ticket} for SKU ${sku} was decided and its outcome is no longer kept`, { details: { sku, ticket } }));
    }
    return { status: 200, body: { sku, ticket, decided: false } };
  }

  private count(o: Outcome): Outcome {
    this.deps.events?.outcome(o.status === 201 ? (o.headers?.['Idempotent-Replayed'] ? 'replayed' : 'reserved') : String(o.body.error));
    return o;
  }

  private async decide(req: PurchaseRequest, idempotencyKey: string, hash: string, address: string, rateTaken = false): Promise<Outcome> {
    const holdId = randomUUID();
    const items: GateItem[] = req.items.map((i) => ({ sku: i.sku, qty: i.qty }));
    const scoped = scopedIdempotencyKey(req.customerId, idempotencyKey);
    const g = await this.gate.reserve({ holdId, idempotencyKey: scoped, hash, customerId: req.customerId, address, items, skipRate: rateTaken });
    switch (g.kind) {
      case 'rebuilding':
        return refuse(new RebuildingError('stock data is being rebuilt after a Redis restart; nothing was reserved, retry with the same Idempotency-Key', { retryAfterS: RETRY_AFTER_S }));
      case 'replay': {
        if (g.record.hash !== hash) return keyReused();
        if (g.record.state === 'done' && g.record.response) {
          return { status: 201, body: JSON.parse(g.record.response) as Record<string, unknown>, headers: { 'Idempotent-Replayed': 'true' } };
        }
        return refuse(
          new IdempotencyInProgressError('a request with this Idempotency-Key is still being processed; retry shortly', { details: { field: 'Idempotency-Key' }, retryAfterS: RETRY_AFTER_S }),
        );
      }
      case 'limited':
        return limited(g.scope, g.retryAfterMs);
      case 'unknown': {
        const i = req.items.findIndex((x) => x.sku === g.sku);
        return refuse(new UnknownSkuError(`no stock is known for SKU ${g.sku}`, { details: { field: `items[${i}].sku`, sku: g.sku } }));
      }
      case 'sold_out': {
        const qty = req.items.find((x) => x.sku === g.sku)?.qty ?? 0;
        return refuse(new SoldOutError(`SKU ${g.sku} has ${g.available} unit(s) available, ${qty} requested`, { details: { sku: g.sku, requested: qty, available: g.available } }));
      }
      case 'limit':
        return refuse(
          new CustomerLimitError(`customer ${req.customerId} may buy at most ${this.deps.config.purchase.maxPerCustomer} unit(s) of ${g.sku} (has ${g.bought})`, {
            details: { sku: g.sku, limit: this.deps.config.purchase.maxPerCustomer, bought: g.bought },
          }),
        );
      case 'ok':
        break;
    }
    const hold = { holdId, idemKey: this.gate.idemKey(scoped), customerId: req.customerId, items };
    const expiresAt = new Date(Date.now() + this.deps.config.purchase.holdTtlMs);
    const w = await this.queue.write({ holdId, customerId: req.customerId, idempotencyKey, hash, items, expiresAt });
    if (w.ok) {
      const body = placedBody(holdId, expiresAt.toISOString(), w.lines);
      // The order is committed: the client gets its 201 even if Redis is unreachable now (the
      // reaper settles the hold later from Postgres).
      await this.gate.settle(hold, w.versions, JSON.stringify(body)).catch((err: unknown) => this.log.warn({ err: errorMessage(err), holdId }, 'settle failed; the reaper will settle the hold'));
      return { status: 201, body, headers: { Location: `/v1/orders/${holdId}` } };
    }
    await this.gate.release(hold).catch((err: unknown) => this.log.warn({ err: errorMessage(err), holdId }, 'release failed; the reaper will release the hold'));
    if (w.reason === 'duplicate_key') {
      if (w.existing.hash !== hash) return keyReused();
      const order = await this.store.getOrder(w.existing.orderId);
      if (!order) return refuse(new UnavailableError('retry with the same Idempotency-Key'));
      return { status: 201, body: placedBody(order.orderId, order.expiresAt, order.lines), headers: { 'Idempotent-Replayed': 'true' } };
    }
    if (w.reason === 'insufficient') {
      this.log.warn({ holdId, items }, 'the gate accepted a purchase Postgres could not cover (view ahead of Postgres); units returned');
      return refuse(new SoldOutError('the purchase could not be covered by the stock in Postgres; nothing was reserved', { details: { reason: 'database_guard' } }));
    }
    this.log.warn({ holdId, reason: w.reason, err: w.message }, 'write-back failed; units returned to the gate');
    return refuse(
      new WriteBackFailedError('the purchase could not be recorded; nothing was reserved, retry with the same Idempotency-Key', { details: { reason: w.reason }, retryAfterS: RETRY_AFTER_S }),
    );
  }

  /**
   * GET /v1/orders/:id: for its customer (or a service acting for it) and services with
   * `orders:read`; anyone else gets the same 404 as for an order that does not exist.
   */
  async getOrder(orderId: string, caller: Caller): Promise<Outcome> {
    if (!UUID_RE.test(orderId)) return refuse(new InvalidOrderIdError('an order id is a UUID', { details: { field: 'orderId' } }));
    const o = await this.store.getOrder(orderId);
    if (!o || o.status === 'abandoned' || !mayAccess(caller, o.customerId, ORDER_SCOPES.read)) return unknownOrder(orderId);
    return { status: 200, body: orderBody(o) };
  }

  /** POST /v1/orders/:id/confirm | cancel: its customer, or a service with `orders:confirm` / `orders:cancel`. */
  async transition(orderId: string, to: 'confirmed' | 'cancelled', caller: Caller): Promise<Outcome> {
    if (!UUID_RE.test(orderId)) return refuse(new InvalidOrderIdError('an order id is a UUID', { details: { field: 'orderId' } }));
    // An order's customer never changes: checking before the transaction's own read is safe.
    const owner = await this.store.orderCustomer(orderId);
    if (owner === null || !mayAccess(caller, owner, ORDER_SCOPES[to])) return unknownOrder(orderId);
    const r = await this.store.transition(orderId, to);
    if (!r.ok && r.reason === 'unknown_order') return unknownOrder(orderId);
    if (!r.ok) {
      if (r.status === 'abandoned') return unknownOrder(orderId);
      if (r.status === 'expired') await this.releaseLimit(r.order);
      const verb = to === 'confirmed' ? 'confirmed' : 'cancelled';
      return refuse(new InvalidStateError(`order ${orderId} is ${r.status} and cannot be ${verb}`, { details: { orderId, status: r.status } }));
    }
    if (to === 'cancelled') await this.releaseLimit(r.order);
    return { status: 200, body: orderBody(r.order) };
  }

  /**
   * Carries out the limit release the transition committed (customer_limit_releases) and forgets
   * it. On failure the row stays and the expiry worker carries it out later (`releasePending`);
   * the Redis side is idempotent, so a release that did happen is not repeated.
   */
  private async releaseLimit(o: { orderId: string; customerId: string; lines: Array<{ sku: string; qty: number }> }): Promise<void> {
    try {
      await this.gate.releaseLimit(o.orderId, o.customerId, releaseItems(o.lines));
      await this.store.limitReleased(o.orderId);
    } catch (err) {
      this.log.warn({ err: errorMessage(err), orderId: o.orderId }, 'customer limit release deferred to the expiry worker');
    }
  }

  /** Releases committed at least `olderThanMs` ago and still pending (a crash, Redis away). */
  async releasePending(olderThanMs = 5000): Promise<number> {
    const pending = await this.store.pendingLimitReleases(olderThanMs, 100);
    for (const r of pending) {
      await this.gate.releaseLimit(r.orderId, r.customerId, r.items);
      await this.store.limitReleased(r.orderId);
    }
    return pending.length;
  }

  /** One pass of the expiry worker; returns how many holds expired. */
  async expireOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = await this.store.expireDue(100);
      for (const o of expired) await this.releaseLimit(o);
      total += expired.length;
      if (expired.length < 100 || this.stopped) {
        await this.releasePending();
        return total;
      }
    }
  }

  /** One pass of the reaper: settles holds whose write-back outcome is unknown past the deadline. */
  async reapOnce(now = Date.now()): Promise<{ released: number; settled: number }> {
    const ids = await this.gate.overdueHolds(now, 100);
    let released = 0;
    let settled = 0;
    for (const id of ids) {
      const hold = await this.gate.readHold(id);
      if (!hold || hold.state !== 'inflight') {
        await this.gate.forgetHold(id);
        continue;
      }
      const r = await this.store.settleHold(hold);
      if (r.abandoned || r.status === 'abandoned') {
        if (await this.gate.release(hold)) released++;
      } else {
        const order = await this.store.getOrder(hold.holdId);
        const body = order ? JSON.stringify(placedBody(order.orderId, order.expiresAt, order.lines)) : '';
        if (await this.gate.settle(hold, r.versions, body)) settled++;
      }
    }
    if (released + settled > 0) this.log.info({ released, settled }, 'reaper settled holds left by a gateway that stopped');
    return { released, settled };
  }

  /** Starts the expiry worker and the reaper (safe with any number of gateways). */
  start(): void {
    const every = this.deps.config.purchase.expiryIntervalMs;
    if (every === 0) return;
    const loop = (name: string, fn: () => Promise<unknown>, ms = every) => {
      const tick = async () => {
        if (this.stopped) return;
        try {
          await fn();
        } catch (err) {
          this.log.warn({ err: errorMessage(err), worker: name }, 'purchase worker pass failed; retrying next interval');
        }
        if (!this.stopped) this.timers.set(name, setTimeout(tick, ms));
      };
      this.timers.set(name, setTimeout(tick, ms));
    };
    loop('expiry', () => this.expireOnce());
    loop('reaper', () => this.reapOnce());
    if (this.hot.size > 0) loop('waiting-room', () => this.admitOnce(), Math.min(every, 100));
  }

  stop(): void {
    this.stopped = true;
    this.waitingRoom.stop();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

export type { Fate, HoldRecord };
