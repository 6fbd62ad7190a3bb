/**
 * The purchase path's answers: `Outcome` (status + JSON body + headers, what gateway/purchase-http.ts
 * sends) and the one place where a refusal decided by a purchase script (the codes of
 * purchase/lua/includes/codes.lua, decoded by the adapters) becomes its catalog error
 * (lib/errors.ts). Pure: no I/O.
 */
import { errorResponse } from '../../lib/error-response.ts';
import {
  ChannelPendingError,
  CustomerLimitError,
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  RateLimitedError,
  RebuildingError,
  SoldOutError,
  UnknownOrderError,
  UnknownSkuError,
  type PlatformError,
} from '../../lib/errors.ts';
import type { KitLine } from '../../lib/contracts/kits.ts';
import type { OrderLine, OrderView } from './ports.ts';

export interface Outcome {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Seconds before a client retries a purchase that could not be decided or recorded now. */
export const RETRY_AFTER_S = 1;

/**
 * A refusal as the client's answer: status, body and headers come from the error (lib/error-response.ts).
 * The refusals built here are answers, never logged: they capture no stack (`stack: false`).
 */
export function refuse(err: PlatformError): Outcome {
  return errorResponse(err);
}

/**
 * A refusal a purchase script decided (gate-reserve.lua, waiting-room-ticket-8.lua,
 * waiting-room-admit-5.lua), with what its answer names.
 */
export type ScriptRefusal =
  | { kind: 'rebuilding' }
  | { kind: 'channel_pending'; sku: string }
  | { kind: 'limited'; scope: 'customer' | 'address'; retryAfterMs: number }
  | { kind: 'unknown'; sku: string; field: string }
  /** `gate`: the gate counted `available`; `waiting-room`: no ticket drawn, nothing left; `ticket`: a waitlisted ticket's fate. */
  | { kind: 'sold_out'; sku: string; requested: number; available: number; by: 'gate' }
  | { kind: 'sold_out'; sku: string; requested: number; by: 'waiting-room' }
  | { kind: 'sold_out'; sku: string; requested: number; by: 'ticket'; ticket: number }
  | { kind: 'limit'; sku: string; customerId: string; limit: number; bought: number };

/** The one mapping from a script's refusal to the catalog error the client gets. */
export function refusal(r: ScriptRefusal): Outcome {
  switch (r.kind) {
    case 'rebuilding':
      return refuse(new RebuildingError('stock data is being rebuilt after a Redis restart; nothing was reserved, retry with the same Idempotency-Key', { stack: false, retryAfterS: RETRY_AFTER_S }));
    case 'channel_pending':
      return refuse(new ChannelPendingError(`the figures of ${JSON.stringify(r.sku)} for this sales channel are being computed; nothing was reserved, retry with the same Idempotency-Key`, { stack: false, retryAfterS: RETRY_AFTER_S, details: { sku: r.sku } }));
    case 'limited': {
      const s = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      return refuse(new RateLimitedError(`too many purchase attempts from this ${r.scope}; retry after ${s} s`, { stack: false, details: { scope: r.scope, retryAfterMs: r.retryAfterMs }, retryAfterS: s }));
    }
    case 'unknown':
      return refuse(new UnknownSkuError(`no stock is known for SKU ${r.sku}`, { stack: false, details: { field: r.field, sku: r.sku } }));
    case 'sold_out':
      switch (r.by) {
        case 'gate':
          return refuse(new SoldOutError(`SKU ${r.sku} has ${r.available} unit(s) available, ${r.requested} requested`, { stack: false, details: { sku: r.sku, requested: r.requested, available: r.available } }));
        case 'waiting-room':
          return refuse(new SoldOutError(`SKU ${r.sku} is sold out`, { stack: false, details: { sku: r.sku, requested: r.requested, available: 0 } }));
        case 'ticket':
          return refuse(new SoldOutError(`SKU ${r.sku} is sold out (ticket ${r.ticket})`, { stack: false, details: { sku: r.sku, requested: r.requested, available: 0, ticket: r.ticket } }));
      }
      break;
    case 'limit':
      return refuse(
        new CustomerLimitError(`customer ${r.customerId} may buy at most ${r.limit} unit(s) of ${r.sku} (has ${r.bought})`, { stack: false, details: { sku: r.sku, limit: r.limit, bought: r.bought } }),
      );
  }
  throw new Error(`unhandled refusal ${JSON.stringify(r)}`);
}

/** The same Idempotency-Key with a different request: the one answer, wherever it is noticed. */
export function keyReused(): Outcome {
  return refuse(new IdempotencyKeyReusedError('this Idempotency-Key was used with a different request', { stack: false, details: { field: 'Idempotency-Key' } }));
}

/** A request with this key is still being decided or written (in another gateway). */
export function keyInProgress(): Outcome {
  return refuse(
    new IdempotencyInProgressError('a request with this Idempotency-Key is still being processed; retry shortly', { stack: false, details: { field: 'Idempotency-Key' }, retryAfterS: RETRY_AFTER_S }),
  );
}

/** An order the caller may not see answers exactly like one that does not exist. */
export function unknownOrder(orderId: string): Outcome {
  return refuse(new UnknownOrderError(`no order ${orderId}`, { stack: false, details: { orderId } }));
}

/** The `field` of an item's SKU in the request (`items[2].sku`). */
export function skuField(items: ReadonlyArray<{ sku: string }>, sku: string): string {
  return `items[${items.findIndex((i) => i.sku === sku)}].sku`;
}

export function placedBody(orderId: string, expiresAt: string, lines: OrderLine[], kits?: readonly KitLine[]): Record<string, unknown> {
  return { orderId, status: 'reserved', expiresAt, items: lines, ...(kits && kits.length > 0 ? { kits } : {}) };
}

export function orderBody(o: OrderView): Record<string, unknown> {
  return { orderId: o.orderId, customerId: o.customerId, status: o.status, expiresAt: o.expiresAt, createdAt: o.createdAt, updatedAt: o.updatedAt, items: o.lines, ...(o.channel ? { channel: o.channel } : {}), ...(o.kits && o.kits.length > 0 ? { kits: o.kits } : {}) };
}

/** A replayed answer carries `Idempotent-Replayed: true`. */
export function replayed(o: Outcome): Outcome {
  return { ...o, headers: { ...o.headers, 'Idempotent-Replayed': 'true' } };
}

/** The `outcome` label of the purchases metric. */
export function outcomeKind(o: Outcome): string {
  return o.status === 201 ? (o.headers?.['Idempotent-Replayed'] ? 'replayed' : 'reserved') : String(o.body.error);
}
