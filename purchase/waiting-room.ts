/**
 * The waiting room for hot SKUs (docs/purchase-path.md, "Waiting room"): a purchase that includes
 * a hot SKU draws a numbered ticket first; admitted tickets go through the gate decision now,
 * the others are answered at once (sold out, or 202 waitlisted) and learn their fate later over
 * `GET /v1/tickets/...`, when the worker (`admitOnce`) admits them or declares the SKU sold out.
 * Redis side: purchase/adapters/waiting-room.ts (behind `WaitingRoomPort`).
 */
import { UnknownTicketError } from '../lib/errors.ts';
import { keyReused, outcomeKind, refuse, refusal, skuField, type Outcome } from './domain/outcome.ts';
import type { PurchasePorts, QueuedRequest } from './domain/ports.ts';
import type { PurchaseRequest } from './domain/request.ts';
import { scopedIdempotencyKey } from './domain/idempotency.ts';

/** An admitted ticket's purchase through the gate (domain/decide.ts, rate limits already taken). */
export type DecideTicket = (r: QueuedRequest) => Promise<Outcome>;

export class WaitingRoom {
  private readonly hot: ReadonlySet<string>;
  private stopped = false;

  constructor(
    private readonly ports: Pick<PurchasePorts, 'waitingRoom' | 'config' | 'events'>,
    private readonly decide: DecideTicket,
  ) {
    this.hot = new Set(ports.config.hotSkus);
  }

  /** The hot SKU a purchase goes through the waiting room for, if any. */
  hotSku(req: PurchaseRequest): string | undefined {
    return req.items.find((i) => this.hot.has(i.sku))?.sku;
  }

  get hasHotSkus(): boolean {
    return this.hot.size > 0;
  }

  /** A purchase of the hot `sku`: a ticket, then the gate now, or an answer at once. */
  async enter(sku: string, req: PurchaseRequest, key: string, hash: string, address: string): Promise<Outcome> {
    const room = this.ports.waitingRoom;
    const items = req.items.map((i) => ({ sku: i.sku, qty: i.qty }));
    const channel = req.channel ?? null;
    // The kits travel with the queued request, so an order decided later still remembers them.
    const kits = req.kits && req.kits.length > 0 ? { kits: req.kits } : {};
    const t = await room.ticket(sku, { key, hash, customerId: req.customerId, items, address, ...(channel ? { channel } : {}), ...kits }, scopedIdempotencyKey(req.customerId, key));
    switch (t.kind) {
      case 'limited':
        return refusal({ kind: 'limited', scope: t.scope, retryAfterMs: t.retryAfterMs });
      case 'unknown':
        return refusal({ kind: 'unknown', sku, field: skuField(req.items, sku) });
      case 'known': {
        if (t.hash !== hash) return keyReused();
        const fate = await room.getFate(sku, t.ticket);
        if (fate) return { status: fate.status, body: fate.body, headers: { 'Idempotent-Replayed': 'true' } };
        return this.waitlisted(sku, t.ticket, null, req.customerId);
      }
      case 'sold_out':
        // No ticket was drawn and nothing is stored: a retry is evaluated afresh.
        return refusal({ kind: 'sold_out', by: 'waiting-room', sku, requested: items.find((i) => i.sku === sku)?.qty ?? 0 });
      case 'waitlisted':
        return this.waitlisted(sku, t.ticket, t.position, req.customerId);
      case 'admit':
        try {
          return await this.decideTicket(sku, { ticket: t.ticket, key, hash, customerId: req.customerId, items, address, ...(channel ? { channel } : {}), ...kits });
        } finally {
          await room.done(sku, t.ticket);
        }
    }
  }

  /** One pass of the worker over the hot SKUs; returns how many tickets were decided. */
  async admitOnce(maxPerSku = 100): Promise<number> {
    const room = this.ports.waitingRoom;
    let decided = 0;
    for (const sku of this.hot) {
      for (let i = 0; i < maxPerSku && !this.stopped; i++) {
        const a = await room.admitNext(sku);
        if (a.kind === 'empty' || a.kind === 'wait') break;
        if (a.kind === 'sold_out') {
          for (const r of a.requests) {
            await this.ticketSoldOut(sku, r);
            decided++;
          }
          break;
        }
        try {
          const o = await this.decideTicket(sku, a.request);
          this.ports.events?.outcome(outcomeKind(o));
        } finally {
          await room.done(sku, a.request.ticket);
        }
        decided++;
      }
    }
    return decided;
  }

  /** The ticket a reference opens for `customerId` (the one it was issued to), or null. */
  openTicket(sku: string, ref: string, customerId: string | undefined): Promise<number | null> {
    return this.ports.waitingRoom.openRef(sku, ref, customerId);
  }

  /** GET /v1/tickets/:sku/:ref, for a ticket `openTicket` opened. */
  async ticketState(sku: string, ticket: number): Promise<Outcome> {
    const room = this.ports.waitingRoom;
    const fate = await room.getFate(sku, ticket);
    if (fate) return { status: 200, body: { sku, ticket, decided: true, outcome: { status: fate.status, body: fate.body } } };
    if (!Number.isSafeInteger(ticket) || ticket < 1 || ticket > (await room.issued(sku))) {
      return refuse(new UnknownTicketError(`no ticket ${ticket} for SKU ${sku}`, { details: { sku, ticket } }));
    }
    // Decided, and its fate no longer kept (refusals are kept PURCHASE_REFUSAL_TTL_S).
    if (!(await room.isPending(sku, ticket))) {
      return refuse(new UnknownTicketError(`ticket ${ticket} for SKU ${sku} was decided and its outcome is no longer kept`, { details: { sku, ticket } }));
    }
    return { status: 200, body: { sku, ticket, decided: false } };
  }

  stop(): void {
    this.stopped = true;
    this.ports.waitingRoom.stop();
  }

  /** Runs an admitted ticket's purchase through the gate and records its fate. */
  private async decideTicket(sku: string, r: QueuedRequest): Promise<Outcome> {
    const o = await this.decide(r);
    const body = { ...o.body, ticket: r.ticket };
    await this.ports.waitingRoom.setFate({ sku, ticket: r.ticket, status: o.status, body }, scopedIdempotencyKey(r.customerId, r.key));
    return { ...o, body };
  }

  /** A waitlisted ticket's fate when the SKU sold out: recorded (briefly) for the ticket. */
  private async ticketSoldOut(sku: string, r: QueuedRequest): Promise<Outcome> {
    const o = refusal({ kind: 'sold_out', by: 'ticket', sku, requested: r.items.find((i) => i.sku === sku)?.qty ?? 0, ticket: r.ticket });
    await this.ports.waitingRoom.setFate({ sku, ticket: r.ticket, status: o.status, body: o.body }, scopedIdempotencyKey(r.customerId, r.key));
    return o;
  }

  private async waitlisted(sku: string, ticket: number, position: number | null, customerId: string): Promise<Outcome> {
    const at = `/v1/tickets/${encodeURIComponent(sku)}/${await this.ports.waitingRoom.ticketRef(sku, ticket, customerId)}`;
    return {
      status: 202,
      body: { status: 'waitlisted', sku, ticket, ...(position === null ? {} : { position }), fate: at, events: `${at}/events` },
      headers: { Location: at },
    };
  }
}

