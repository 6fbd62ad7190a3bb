/**
 * The gate decision against fakes: an in-memory gate with the same rules as gate-reserve.lua
 * (tests/fakes/purchase-gate.ts) and a scripted write-back. No I/O.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { decidePurchase, type DecidePorts } from './decide.ts';
import { scopedIdempotencyKey } from './idempotency.ts';
import type { OrderView, WriteResult } from './ports.ts';
import { FakeGate } from '../../tests/fakes/purchase-gate.ts';
import { requestHash, type PurchaseRequest } from './request.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');
const lines = (items: Array<{ sku: string; qty: number }>) => items.map((i) => ({ ...i, allocations: [{ locationId: 'WH-1', qty: i.qty }] }));

function setup(opts: { maxPerCustomer?: number; write?: (holdId: string) => WriteResult; orders?: OrderView[] } = {}) {
  const gate = new FakeGate(opts.maxPerCustomer ?? 0);
  const written: string[] = [];
  let n = 0;
  const ports: DecidePorts = {
    gate,
    writeBack: {
      write: async (h) => {
        written.push(h.holdId);
        return opts.write?.(h.holdId) ?? { ok: true, versions: new Map(h.items.map((i) => [i.sku, 100])), lines: lines(h.items) };
      },
    },
    orders: {
      getOrder: async (id) => opts.orders?.find((o) => o.orderId === id) ?? null,
      orderCustomer: async () => null,
      transition: async () => ({ ok: false, reason: 'unknown_order' }),
      expireDue: async () => [],
      pendingLimitReleases: async () => [],
      limitReleased: async () => undefined,
      settleHold: async () => ({ abandoned: true }),
    },
    clock: { now: () => NOW },
    newId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    logger: createLogger({ level: 'silent' }),
    config: { maxPerCustomer: opts.maxPerCustomer ?? 0, holdTtlMs: 900_000 } as DecidePorts['config'],
  };
  const buy = (req: PurchaseRequest, key = 'k-1', rateTaken = false) =>
    decidePurchase(ports, { req, idempotencyKey: key, scopedKey: scopedIdempotencyKey(req.customerId, key), hash: requestHash(req), address: '127.0.0.1', rateTaken });
  return { gate, ports, buy, written };
}

describe('decidePurchase', () => {
  it('reserves, writes back and settles: 201 with the order, units out of the gate', async () => {
    const { gate, buy } = setup();
    gate.view.set('A', 5);
    const o = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 2 }] });
    expect(o.status).toBe(201);
    expect(o.body).toMatchObject({ status: 'reserved', expiresAt: new Date(NOW + 900_000).toISOString(), items: [{ sku: 'A', qty: 2 }] });
    expect(o.headers?.Location).toBe(`/v1/orders/${String(o.body.orderId)}`);
    expect(gate.available('A')).toBe(3);
    expect(gate.inflight.get('A')).toBe(0);
  });

  it('answers a replay of a done key from its record, and the same key with another body with 422', async () => {
    const { gate, buy, written } = setup();
    gate.view.set('A', 5);
    const first = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] });
    const again = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] });
    expect(again).toEqual({ status: 201, body: first.body, headers: { 'Idempotent-Replayed': 'true' } });
    expect((await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 2 }] })).body.error).toBe('idempotency_key_reused');
    expect(written).toHaveLength(1);
    expect(gate.available('A')).toBe(4);
  });

  it('answers 409 idempotency_in_progress while the first request with the key is being written', async () => {
    const { gate, buy } = setup();
    gate.view.set('A', 5);
    const req = { customerId: 'c1', items: [{ sku: 'A', qty: 1 }] };
    gate.idem.set(gate.idemKey(scopedIdempotencyKey('c1', 'k-1')), { hash: requestHash(req), state: 'pending', holdId: 'h' });
    const o = await buy(req);
    expect(o.status).toBe(409);
    expect(o.body.error).toBe('idempotency_in_progress');
    expect(o.headers?.['Retry-After']).toBe('1');
  });

  it('refuses all items when one is short: 409 sold_out naming it, nothing taken', async () => {
    const { gate, buy, written } = setup();
    gate.view.set('A', 5);
    gate.view.set('B', 1);
    const o = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }] });
    expect(o.status).toBe(409);
    expect(o.body).toMatchObject({ error: 'sold_out', details: { sku: 'B', requested: 2, available: 1 } });
    expect(gate.available('A')).toBe(5);
    expect(written).toHaveLength(0);
  });

  it('names the field of an unknown SKU (404) and counts the customer limit (409)', async () => {
    const { gate, buy } = setup({ maxPerCustomer: 2 });
    gate.view.set('A', 10);
    const unknown = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }, { sku: 'X', qty: 1 }] }, 'k-u');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'unknown_sku', details: { field: 'items[1].sku', sku: 'X' } });
    expect((await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 2 }] }, 'k-a')).status).toBe(201);
    const over = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] }, 'k-b');
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ error: 'customer_limit', details: { sku: 'A', limit: 2, bought: 2 } });
  });

  it('maps the rate limit to 429 with Retry-After in whole seconds, and a rebuilding Redis to 503', async () => {
    const { gate, buy } = setup();
    gate.next = { kind: 'limited', scope: 'address', retryAfterMs: 1500 };
    const limited = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] });
    expect(limited.status).toBe(429);
    expect(limited.headers?.['Retry-After']).toBe('2');
    expect(limited.body).toMatchObject({ error: 'rate_limited', details: { scope: 'address', retryAfterMs: 1500 } });
    gate.next = { kind: 'rebuilding' };
    const rebuilding = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] });
    expect(rebuilding.status).toBe(503);
    expect(rebuilding.body.error).toBe('rebuilding');
  });

  it('gives the units back when the write-back fails: 503 write_back_failed, and a retry with the key succeeds', async () => {
    let fail = true;
    const { gate, buy } = setup({ write: () => (fail ? { ok: false, reason: 'error', message: 'pg away' } : { ok: true, versions: new Map([['A', 7]]), lines: lines([{ sku: 'A', qty: 2 }]) }) });
    gate.view.set('A', 2);
    const o = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 2 }] });
    expect(o.status).toBe(503);
    expect(o.body).toMatchObject({ error: 'write_back_failed', details: { reason: 'error' } });
    expect(gate.available('A')).toBe(2);
    fail = false;
    expect((await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 2 }] })).status).toBe(201);
  });

  it('answers a purchase Postgres cannot cover with 409 sold_out (database_guard), units back', async () => {
    const { gate, buy } = setup({ write: () => ({ ok: false, reason: 'insufficient', message: 'guard' }) });
    gate.view.set('A', 3);
    const o = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 3 }] });
    expect(o.status).toBe(409);
    expect(o.body).toMatchObject({ error: 'sold_out', details: { reason: 'database_guard' } });
    expect(gate.available('A')).toBe(3);
  });

  it('answers with the existing order when Postgres already holds the key (Redis lost the record)', async () => {
    const existing: OrderView = { orderId: 'o-1', customerId: 'c1', status: 'reserved', expiresAt: 'x', createdAt: 'y', updatedAt: 'z', lines: lines([{ sku: 'A', qty: 1 }]) };
    const req = { customerId: 'c1', items: [{ sku: 'A', qty: 1 }] };
    const { gate, buy } = setup({ write: () => ({ ok: false, reason: 'duplicate_key', existing: { orderId: 'o-1', hash: requestHash(req) } }), orders: [existing] });
    gate.view.set('A', 3);
    const o = await buy(req);
    expect(o).toEqual({ status: 201, body: { orderId: 'o-1', status: 'reserved', expiresAt: 'x', items: existing.lines }, headers: { 'Idempotent-Replayed': 'true' } });
    expect(gate.available('A')).toBe(3);
  });

  it('still answers 201 when the settle call fails after the commit (the reaper settles later)', async () => {
    const { gate, buy } = setup();
    gate.view.set('A', 3);
    gate.failSettle = true;
    const o = await buy({ customerId: 'c1', items: [{ sku: 'A', qty: 1 }] });
    expect(o.status).toBe(201);
    expect(gate.inflight.get('A')).toBe(1);
  });
});
