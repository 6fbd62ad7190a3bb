/**
 * Changing and extending a hold against fakes: the gate of tests/fakes/purchase-gate.ts, an order
 * in memory and a scripted `hold_resize`. What is checked is the choreography: which units go
 * through the gate, when the change hold is settled or released, what is retried and what a
 * caller may do. No I/O.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.ts';
import { FakeGate } from '../tests/fakes/purchase-gate.ts';
import type { ExtendResult, LineChange, ResizeResult } from './domain/hold-lifecycle.ts';
import type { OrderView, PurchasePorts } from './domain/ports.ts';
import { HoldLifecycle, type HoldLifecyclePorts } from './hold-lifecycle.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');
const ORDER = '00000000-0000-4000-8000-00000000000a';
const owner = { customerId: 'c1', scopes: new Set<string>() };

function setup(opts: { resize?: (n: number, change: { id: string; lines: LineChange[] }) => ResizeResult; maxPerCustomer?: number } = {}) {
  const gate = new FakeGate(opts.maxPerCustomer ?? 0);
  gate.view.set('A', 10);
  const order: OrderView = {
    orderId: ORDER,
    customerId: 'c1',
    status: 'reserved',
    expiresAt: new Date(NOW + 60_000).toISOString(),
    createdAt: new Date(NOW).toISOString(),
    updatedAt: new Date(NOW).toISOString(),
    lines: [{ sku: 'A', qty: 2, allocations: [{ locationId: 'WH-1', qty: 2 }] }],
  };
  const resized: Array<{ id: string; lines: LineChange[] }> = [];
  const limitReleases: Array<{ orderId: string; lines: Array<{ sku: string; qty: number }> }> = [];
  let n = 0;
  const ports: HoldLifecyclePorts = {
    gate,
    orders: {
      getOrder: async () => structuredClone(order),
      orderCustomer: async () => order.customerId,
    } as unknown as PurchasePorts['orders'],
    holds: {
      extend: async (): Promise<ExtendResult> => ({ ok: false, reason: 'unknown_order' }),
      resize: async (change) => {
        resized.push(change);
        const r = opts.resize?.(resized.length, change) ?? { ok: true, lines: [], versions: new Map(change.lines.map((l) => [l.sku, 7])), released: [] };
        if (r.ok) for (const l of change.lines) order.lines = order.lines.map((x) => (x.sku === l.sku ? { ...x, qty: l.to } : x));
        return r;
      },
    },
    clock: { now: () => NOW },
    newId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    logger: createLogger({ level: 'silent' }),
    config: { maxPerCustomer: opts.maxPerCustomer ?? 0, holdMaxLifetimeMs: 3_600_000 } as PurchasePorts['config'],
  };
  const life = new HoldLifecycle(ports, async (o) => void limitReleases.push({ orderId: o.orderId, lines: o.lines }));
  return { gate, order, life, resized, limitReleases };
}

describe('HoldLifecycle.change', () => {
  it('takes only the extra units through the gate and settles the change hold once Postgres committed', async () => {
    const { gate, life, resized } = setup();
    const o = await life.change(ORDER, [{ sku: 'A', qty: 5 }], owner, '127.0.0.1');
    expect(o.status).toBe(200);
    expect(gate.reserved).toMatchObject([{ customerId: 'c1', items: [{ sku: 'A', qty: 3 }] }]);
    expect(resized).toEqual([{ id: gate.reserved[0]!.holdId, orderId: ORDER, lines: [{ sku: 'A', from: 2, to: 5 }] }]);
    expect(gate.settled).toEqual([gate.reserved[0]!.holdId]);
    expect(gate.inflight.get('A')).toBe(0);
  });

  it('gives the units back to the gate when Postgres refuses, and answers sold_out', async () => {
    const { gate, life } = setup({ resize: () => ({ ok: false, reason: 'insufficient' }) });
    const o = await life.change(ORDER, [{ sku: 'A', qty: 5 }], owner, '127.0.0.1');
    expect(o).toMatchObject({ status: 409, body: { error: 'sold_out', details: { reason: 'database_guard' } } });
    expect(gate.released).toEqual([gate.reserved[0]!.holdId]);
    expect(gate.available('A')).toBe(10);
  });

  it('a gate refusal is the answer and nothing is written', async () => {
    const { life, resized } = setup();
    const o = await life.change(ORDER, [{ sku: 'A', qty: 13 }], owner, '127.0.0.1');
    expect(o).toMatchObject({ status: 409, body: { error: 'sold_out', details: { sku: 'A', requested: 11, available: 10 } } });
    expect(resized).toEqual([]);
  });

  it('the per-customer limit counts the extra units on top of what the customer bought', async () => {
    const { gate, life } = setup({ maxPerCustomer: 4 });
    gate.bought.set('A/c1', 2); // the hold's own units
    expect((await life.change(ORDER, [{ sku: 'A', qty: 5 }], owner, '127.0.0.1')).body).toMatchObject({ error: 'customer_limit', details: { bought: 2, limit: 4 } });
    expect((await life.change(ORDER, [{ sku: 'A', qty: 4 }], owner, '127.0.0.1')).status).toBe(200);
  });

  it('a decrease does not touch the gate and carries out the limit release it committed, keyed by the change', async () => {
    const { gate, life, limitReleases } = setup({ resize: () => ({ ok: true, lines: [], versions: new Map([['A', 9]]), released: [{ sku: 'A', qty: 1 }] }) });
    const o = await life.change(ORDER, [{ sku: 'A', qty: 1 }], owner, '127.0.0.1');
    expect(o.status).toBe(200);
    expect(gate.reserved).toEqual([]);
    expect(limitReleases).toEqual([{ orderId: '00000000-0000-4000-8000-000000000001', lines: [{ sku: 'A', qty: 1 }] }]);
  });

  it('a concurrent change is retried from a fresh read; one that keeps happening ends in order_changed with every change hold released', async () => {
    const once = setup({ resize: (n) => (n === 1 ? { ok: false, reason: 'conflict' } : { ok: true, lines: [], versions: new Map([['A', 9]]), released: [] }) });
    expect((await once.life.change(ORDER, [{ sku: 'A', qty: 3 }], owner, '127.0.0.1')).status).toBe(200);
    expect(once.gate.released).toEqual([once.gate.reserved[0]!.holdId]);
    expect(once.gate.settled).toEqual([once.gate.reserved[1]!.holdId]);
    const always = setup({ resize: () => ({ ok: false, reason: 'conflict' }) });
    expect((await always.life.change(ORDER, [{ sku: 'A', qty: 3 }], owner, '127.0.0.1')).body).toMatchObject({ error: 'order_changed' });
    expect(always.gate.released).toHaveLength(3);
    expect(always.gate.inflight.get('A')).toBe(0);
  });

  it('a retry of a change that went through writes nothing and answers the order', async () => {
    const { gate, life, resized } = setup();
    expect((await life.change(ORDER, [{ sku: 'A', qty: 2 }], owner, '127.0.0.1')).status).toBe(200);
    expect(gate.reserved).toEqual([]);
    expect(resized).toEqual([]);
  });

  it('only the order\'s customer may change it: anyone else, services included, gets 404', async () => {
    const { life, resized } = setup();
    expect((await life.change(ORDER, [{ sku: 'A', qty: 3 }], { customerId: 'c2', scopes: new Set() }, 'x')).status).toBe(404);
    expect((await life.change(ORDER, [{ sku: 'A', qty: 3 }], { customerId: undefined, scopes: new Set(['orders:read', 'orders:confirm', 'orders:cancel']) }, 'x')).status).toBe(404);
    expect((await life.change('not-a-uuid', [{ sku: 'A', qty: 3 }], owner, 'x')).body).toMatchObject({ error: 'invalid_order_id' });
    expect(resized).toEqual([]);
  });

  it('refuses a hold past its expiry before asking the gate for anything', async () => {
    const { gate, order, life } = setup();
    order.expiresAt = new Date(NOW).toISOString();
    expect((await life.change(ORDER, [{ sku: 'A', qty: 3 }], owner, 'x')).body).toMatchObject({ error: 'invalid_state', details: { status: 'expired' } });
    expect(gate.reserved).toEqual([]);
  });
});
