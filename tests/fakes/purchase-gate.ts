/**
 * An in-memory purchase gate for unit tests of the purchase path (purchase/domain/decide.test.ts,
 * purchase/hold-lifecycle.test.ts): the rules of gate-reserve.lua (availability = view - inflight
 * - unreflected, all items or none, per-customer limit, idempotency records), settle and release.
 * No I/O.
 */
import { gateAvailable } from '../../purchase/domain/gate-availability.ts';
import type { GatePort, HoldAddress, HoldRef, IdempotencyRecord, ReserveOutcome, ReserveRequest } from '../../purchase/domain/ports.ts';

export class FakeGate implements GatePort {
  view = new Map<string, number>();
  inflight = new Map<string, number>();
  bought = new Map<string, number>();
  idem = new Map<string, IdempotencyRecord>();
  settled: string[] = [];
  released: string[] = [];
  reserved: ReserveRequest[] = [];
  next: ReserveOutcome | undefined;
  failSettle = false;

  constructor(private readonly maxPerCustomer = 0) {}

  available(sku: string): number {
    return gateAvailable({ viewAvailable: this.view.get(sku) ?? 0, inflight: this.inflight.get(sku) ?? 0, unreflected: 0 });
  }
  async reserve(a: ReserveRequest): Promise<ReserveOutcome> {
    this.reserved.push(a);
    if (this.next) return this.next;
    const rec = this.idem.get(this.idemKey(a.idempotencyKey));
    if (rec) return { kind: 'replay', record: rec };
    for (const i of a.items) {
      if (!this.view.has(i.sku)) return { kind: 'unknown', sku: i.sku };
      if (this.available(i.sku) < i.qty) return { kind: 'sold_out', sku: i.sku, available: Math.max(0, this.available(i.sku)) };
      const b = this.bought.get(`${i.sku}/${a.customerId}`) ?? 0;
      if (this.maxPerCustomer > 0 && b + i.qty > this.maxPerCustomer) return { kind: 'limit', sku: i.sku, bought: b };
    }
    for (const i of a.items) {
      this.inflight.set(i.sku, (this.inflight.get(i.sku) ?? 0) + i.qty);
      this.bought.set(`${i.sku}/${a.customerId}`, (this.bought.get(`${i.sku}/${a.customerId}`) ?? 0) + i.qty);
    }
    this.idem.set(this.idemKey(a.idempotencyKey), { hash: a.hash, state: 'pending', holdId: a.holdId });
    return { kind: 'ok' };
  }
  async settle(hold: Omit<HoldRef, 'customerId'>, _versions: Map<string, number>, response: string): Promise<boolean> {
    if (this.failSettle) throw new Error('redis away');
    for (const i of hold.items) {
      this.inflight.set(i.sku, (this.inflight.get(i.sku) ?? 0) - i.qty);
      this.view.set(i.sku, (this.view.get(i.sku) ?? 0) - i.qty); // as if the view already includes it
    }
    const rec = this.idem.get(hold.idemKey);
    if (rec) this.idem.set(hold.idemKey, { ...rec, state: 'done', response });
    this.settled.push(hold.holdId);
    return true;
  }
  async release(hold: HoldRef): Promise<boolean> {
    for (const i of hold.items) {
      this.inflight.set(i.sku, (this.inflight.get(i.sku) ?? 0) - i.qty);
      this.bought.set(`${i.sku}/${hold.customerId}`, (this.bought.get(`${i.sku}/${hold.customerId}`) ?? 0) - i.qty);
    }
    this.idem.delete(hold.idemKey);
    this.released.push(hold.holdId);
    return true;
  }
  async releaseLimit(): Promise<void> {}
  idemKey(scopedKey: string): string {
    return `idem:${scopedKey}`;
  }
  async overdueHolds(): Promise<HoldAddress[]> {
    return [];
  }
  async readHold() {
    return null;
  }
  async forgetHold(): Promise<void> {}
}
