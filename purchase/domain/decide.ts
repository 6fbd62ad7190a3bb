/**
 * The gate decision for one purchase: the atomic gate call, the write-back of an accepted hold,
 * settle or release of the hold, and the client's answer. Everything it touches is a port
 * (domain/ports.ts), so it runs against fakes in unit tests; the real adapters are Redis
 * (gate-reserve.lua and friends) and Postgres (the group-committed write-back).
 */
import { errorMessage, SoldOutError, UnavailableError, WriteBackFailedError } from '../../lib/errors.ts';
import { keyInProgress, keyReused, placedBody, refuse, refusal, RETRY_AFTER_S, skuField, type Outcome } from './outcome.ts';
import type { GateItem, PurchasePorts, ReserveOutcome } from './ports.ts';
import type { PurchaseRequest } from './request.ts';

export type DecidePorts = Pick<PurchasePorts, 'gate' | 'writeBack' | 'orders' | 'clock' | 'newId' | 'logger' | 'config'>;

export interface DecideInput {
  req: PurchaseRequest;
  /** The client's Idempotency-Key (unscoped, as Postgres stores it). */
  idempotencyKey: string;
  /** The same key scoped by customer (the Redis record's name). */
  scopedKey: string;
  /** requestHash(req): what the key is bound to. */
  hash: string;
  address: string;
  /** The rate limits were already taken (an admitted waiting-room ticket). */
  rateTaken?: boolean;
}

/**
 * A gate refusal (gate-reserve.lua) as the client's answer; `items` are what was asked of the gate
 * (a purchase's items, or the extra units of a hold change: purchase/hold-lifecycle.ts).
 */
export function reserveRefusal(g: Exclude<ReserveOutcome, { kind: 'ok' } | { kind: 'replay' }>, items: readonly GateItem[], customerId: string, maxPerCustomer: number): Outcome {
  switch (g.kind) {
    case 'rebuilding':
      return refusal({ kind: 'rebuilding' });
    case 'channel_pending':
      return refusal({ kind: 'channel_pending', sku: g.sku });
    case 'limited':
      return refusal({ kind: 'limited', scope: g.scope, retryAfterMs: g.retryAfterMs });
    case 'unknown':
      return refusal({ kind: 'unknown', sku: g.sku, field: skuField(items, g.sku) });
    case 'sold_out':
      return refusal({ kind: 'sold_out', by: 'gate', sku: g.sku, requested: items.find((x) => x.sku === g.sku)?.qty ?? 0, available: g.available });
    case 'limit':
      return refusal({ kind: 'limit', sku: g.sku, customerId, limit: maxPerCustomer, bought: g.bought });
  }
}

export async function decidePurchase(ports: DecidePorts, input: DecideInput): Promise<Outcome> {
  const { req, idempotencyKey, scopedKey, hash, address } = input;
  const { gate, config } = ports;
  const log = ports.logger;
  const holdId = ports.newId();
  const items: GateItem[] = req.items.map((i) => ({ sku: i.sku, qty: i.qty }));
  const channel = req.channel ?? null;
  const g = await gate.reserve({ holdId, idempotencyKey: scopedKey, hash, customerId: req.customerId, address, items, now: ports.clock.now(), skipRate: input.rateTaken ?? false, channel });
  if (g.kind === 'replay') {
    if (g.record.hash !== hash) return keyReused();
    if (g.record.state === 'done' && g.record.response) {
      return { status: 201, body: JSON.parse(g.record.response) as Record<string, unknown>, headers: { 'Idempotent-Replayed': 'true' } };
    }
    return keyInProgress();
  }
  if (g.kind !== 'ok') return reserveRefusal(g, items, req.customerId, config.maxPerCustomer);
  const hold = { holdId, idemKey: gate.idemKey(scopedKey, items), customerId: req.customerId, items };
  const expiresAt = new Date(ports.clock.now() + config.holdTtlMs);
  const kits = req.kits && req.kits.length > 0 ? req.kits : undefined;
  const w = await ports.writeBack.write({ holdId, customerId: req.customerId, idempotencyKey, hash, items, expiresAt, channel, ...(kits ? { kits } : {}) });
  if (w.ok) {
    const body = placedBody(holdId, expiresAt.toISOString(), w.lines, kits);
    // The order is committed: the client gets its 201 even if Redis is unreachable now (the
    // reaper settles the hold later from Postgres).
    await gate.settle(hold, w.versions, JSON.stringify(body)).catch((err: unknown) => log.warn({ err: errorMessage(err), holdId }, 'settle failed; the reaper will settle the hold'));
    return { status: 201, body, headers: { Location: `/v1/orders/${holdId}` } };
  }
  await gate.release(hold).catch((err: unknown) => log.warn({ err: errorMessage(err), holdId }, 'release failed; the reaper will release the hold'));
  if (w.reason === 'duplicate_key') {
    // Redis lost the key's record, Postgres still has the order (its unique key): answer with it.
    if (w.existing.hash !== hash) return keyReused();
    const order = await ports.orders.getOrder(w.existing.orderId);
    if (!order) return refuse(new UnavailableError('retry with the same Idempotency-Key'));
    return { status: 201, body: placedBody(order.orderId, order.expiresAt, order.lines, order.kits), headers: { 'Idempotent-Replayed': 'true' } };
  }
  if (w.reason === 'insufficient') {
    log.warn({ holdId, items }, 'the gate accepted a purchase Postgres could not cover (view ahead of Postgres); units returned');
    return refuse(new SoldOutError('the purchase could not be covered by the stock in Postgres; nothing was reserved', { details: { reason: 'database_guard' } }));
  }
  log.warn({ holdId, reason: w.reason, err: w.message }, 'write-back failed; units returned to the gate');
  return refuse(
    new WriteBackFailedError('the purchase could not be recorded; nothing was reserved, retry with the same Idempotency-Key', { details: { reason: w.reason }, retryAfterS: RETRY_AFTER_S }),
  );
}
