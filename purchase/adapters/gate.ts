/**
 * The purchase gate in Redis: the only module that calls the gate scripts (purchase/lua). Each
 * script is loaded once per connection with ioredis `defineCommand` (EVALSHA, NOSCRIPT fallback)
 * and called through one typed method here. Key layout in docs/purchase-path.md.
 */
import type { Redis } from 'ioredis';
import { scanSkus, type LuaCommand } from '../../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import { gateAvailable } from '../domain/gate-availability.ts';
import type { GateItem, GatePort, HoldRecord, HoldRef, IdempotencyRecord, ReserveOutcome, ReserveRequest } from '../domain/ports.ts';
import { defineScript, packArgs, SCRIPT_CODE } from './scripts.ts';

export type { GateItem, HoldRecord, IdempotencyRecord, ReserveOutcome };
export { scopedIdempotencyKey } from '../domain/idempotency.ts';

export interface GateLimits {
  maxPerCustomer: number;
  rateCustomer: { perSec: number; burst: number };
  rateAddress: { perSec: number; burst: number };
  idempotencyTtlS: number;
  settleTimeoutMs: number;
  holdTtlMs: number;
}

export interface GateCheck {
  sku: string;
  inflight: number;
  expectedInflight: number;
  unreflected: number;
  expectedUnreflected: number;
  duePending: number;
  drift: boolean;
}

const DEFAULT_LIMITS: GateLimits = {
  maxPerCustomer: 0,
  rateCustomer: { perSec: 0, burst: 1 },
  rateAddress: { perSec: 0, burst: 1 },
  idempotencyTtlS: 86_400,
  settleTimeoutMs: 30_000,
  holdTtlMs: 900_000,
};

const SCRIPTS = ['gate-reserve', 'gate-settle', 'gate-release', 'gate-uncount', 'gate-check-4'] as const;

/** How long a release marker is kept: longer than any retry of the release (a day at least). */
export function limitReleaseMarkerTtlS(limits: Pick<GateLimits, 'idempotencyTtlS' | 'holdTtlMs'>): number {
  return Math.max(86_400, limits.idempotencyTtlS, Math.ceil(limits.holdTtlMs / 1000) * 2);
}

export class Gate implements GatePort {
  readonly keys: RedisKeys;
  private readonly redis: Redis;
  private readonly limits: GateLimits;
  private readonly cmd: Record<(typeof SCRIPTS)[number], LuaCommand>;

  /** `limits` may be left out by users that only check or settle (reconciliation). */
  constructor(deps: { redis: Redis; prefix: string; limits?: GateLimits }) {
    this.redis = deps.redis;
    this.limits = deps.limits ?? DEFAULT_LIMITS;
    this.keys = redisKeys(deps.prefix);
    const cmd = {} as Record<(typeof SCRIPTS)[number], LuaCommand>;
    for (const name of SCRIPTS) cmd[name] = defineScript(deps.redis, name);
    this.cmd = cmd;
  }

  /** The record of a scoped key (`scopedIdempotencyKey`). */
  idemKey(key: string): string {
    return this.keys.idempotency(key);
  }
  holdKey(holdId: string): string {
    return this.keys.hold(holdId);
  }
  get unsettledKey(): string {
    return this.keys.unsettled;
  }
  holdsKey(sku: string): string {
    return this.keys.gateHolds(sku);
  }
  customerKey(sku: string): string {
    return this.keys.gateCustomers(sku);
  }

  /**
   * One atomic gate decision (gate-reserve.lua). `idempotencyKey` is the scoped key; `skipRate`:
   * the rate limits were already taken (a waiting-room ticket takes them before it is drawn).
   */
  async reserve(a: ReserveRequest): Promise<ReserveOutcome> {
    const now = a.now ?? Date.now();
    const L = this.limits;
    const noLimit = { capacity: 1, perSec: 0 };
    const keys = [this.idemKey(a.idempotencyKey), this.holdKey(a.holdId), this.unsettledKey, this.keys.rateCustomer(a.customerId), this.keys.rateAddress(a.address)];
    for (const i of a.items) keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
    keys.push(this.keys.epoch); // always last: gate-reserve.lua reads KEYS[#KEYS]
    const args = packArgs({
      now,
      holdId: a.holdId,
      hash: a.hash,
      customer: a.customerId,
      settleDeadline: now + L.settleTimeoutMs,
      idemTtl: L.idempotencyTtlS,
      custTtl: Math.max(L.idempotencyTtlS, Math.ceil(L.holdTtlMs / 1000) * 2),
      maxPerCustomer: L.maxPerCustomer,
      rateCustomer: a.skipRate ? noLimit : { capacity: L.rateCustomer.burst, perSec: L.rateCustomer.perSec },
      rateAddress: a.skipRate ? noLimit : { capacity: L.rateAddress.burst, perSec: L.rateAddress.perSec },
      items: a.items.map((i) => [i.sku, i.qty]),
    });
    const reply = (await this.cmd['gate-reserve'](keys.length, ...keys, args)) as Array<string | number>;
    const item = (i: unknown) => a.items[Number(i) - 1]?.sku ?? '';
    switch (reply[0]) {
      case SCRIPT_CODE.OK:
        return { kind: 'ok' };
      case SCRIPT_CODE.REBUILDING:
        return { kind: 'rebuilding' };
      case SCRIPT_CODE.REPLAY:
        return { kind: 'replay', record: parseIdem(String(reply[1])) };
      case SCRIPT_CODE.LIMITED_CUSTOMER:
        return { kind: 'limited', scope: 'customer', retryAfterMs: Number(reply[1]) };
      case SCRIPT_CODE.LIMITED_ADDRESS:
        return { kind: 'limited', scope: 'address', retryAfterMs: Number(reply[1]) };
      case SCRIPT_CODE.UNKNOWN_SKU:
        return { kind: 'unknown', sku: item(reply[1]) };
      case SCRIPT_CODE.SOLD_OUT:
        return { kind: 'sold_out', sku: item(reply[1]), available: Number(reply[2]) };
      case SCRIPT_CODE.CUSTOMER_LIMIT:
        return { kind: 'limit', sku: item(reply[1]), bought: Number(reply[2]) };
      default:
        throw new Error(`unexpected gate-reserve reply: ${JSON.stringify(reply)}`);
    }
  }

  /** The write-back committed: `versions` maps each SKU to its version right after it. */
  async settle(hold: Omit<HoldRef, 'customerId'>, versions: Map<string, number>, response: string): Promise<boolean> {
    const keys = [hold.idemKey, this.holdKey(hold.holdId), this.unsettledKey];
    const items: Array<[string, number, number]> = [];
    for (const i of hold.items) {
      keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.keys.gatePending(i.sku));
      const v = versions.get(i.sku);
      if (v === undefined) throw new Error(`no write-back version for ${i.sku}`);
      items.push([i.sku, i.qty, v]);
    }
    const args = packArgs({ holdId: hold.holdId, idemTtl: this.limits.idempotencyTtlS, holdTtl: Math.ceil(this.limits.holdTtlMs / 1000) + 3600, response, items });
    return Number(await this.cmd['gate-settle'](keys.length, ...keys, args)) === 1;
  }

  /** The write-back did not and will not commit: units back to the gate. */
  async release(hold: HoldRef): Promise<boolean> {
    const keys = [hold.idemKey, this.holdKey(hold.holdId), this.unsettledKey];
    for (const i of hold.items) keys.push(this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
    const args = packArgs({ holdId: hold.holdId, customer: hold.customerId, items: hold.items.map((i) => [i.sku, i.qty]) });
    return Number(await this.cmd['gate-release'](keys.length, ...keys, args)) === 1;
  }

  /**
   * A cancelled or expired order no longer counts towards the customer's limit: carries out the
   * release committed with the transition (gate-uncount.lua), at most once per order and SKU.
   */
  async releaseLimit(orderId: string, customerId: string, items: GateItem[]): Promise<void> {
    if (this.limits.maxPerCustomer === 0 || items.length === 0) return;
    const ttl = limitReleaseMarkerTtlS(this.limits);
    await Promise.all(items.map((i) => this.cmd['gate-uncount'](2, this.customerKey(i.sku), this.keys.limitReleased(i.sku, orderId), customerId, i.qty, ttl)));
  }

  /** Holds whose settle deadline has passed (the reaper's work list). */
  async overdueHolds(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.unsettledKey, '-inf', now, 'LIMIT', 0, limit);
  }

  async readHold(holdId: string): Promise<HoldRecord | null> {
    const h = await this.redis.hgetall(this.holdKey(holdId));
    if (!h.state) return null;
    const items = (JSON.parse(h.items ?? '[]') as Array<[string, number]>).map(([sku, qty]) => ({ sku, qty }));
    return { holdId, state: h.state as HoldRecord['state'], customerId: h.customer ?? '', idemKey: h.idem ?? '', items, acceptedAt: Number(h.at ?? 0) };
  }

  /** Removes a hold from the reaper's index when its record is gone (nothing left to settle). */
  async forgetHold(holdId: string): Promise<void> {
    await this.redis.zrem(this.unsettledKey, holdId);
  }

  async readIdempotency(key: string): Promise<IdempotencyRecord | null> {
    const v = await this.redis.get(this.idemKey(key));
    return v ? parseIdem(v) : null;
  }

  /** The gate's view of a SKU: committed availability and the two gate terms. */
  async state(sku: string): Promise<{ viewAvailable: number | null; version: number; inflight: number; unreflected: number; available: number | null }> {
    const [view, gate] = await Promise.all([
      this.redis.hmget(this.keys.summary(sku), 'available', 'version'),
      this.redis.hmget(this.keys.gate(sku), 'inflight', 'unreflected'),
    ]);
    const viewAvailable = view[0] == null ? null : Number(view[0]);
    const inflight = Number(gate[0] ?? 0);
    const unreflected = Number(gate[1] ?? 0);
    return { viewAvailable, version: Number(view[1] ?? 0), inflight, unreflected, available: viewAvailable === null ? null : gateAvailable({ viewAvailable, inflight, unreflected }) };
  }

  /** SKUs that have gate state, in pages (SCAN). */
  scanGateSkus(count = 1000): AsyncGenerator<string[]> {
    return scanSkus(this.redis, this.keys.gatePattern, this.keys.skuFromGateKey, count);
  }

  /** Compares (and with `repair` fixes) each SKU's gate terms against its hold records. */
  async check(skus: string[], repair: boolean): Promise<GateCheck[]> {
    const out: GateCheck[] = [];
    for (const sku of skus) {
      const r = (await this.cmd['gate-check-4'](this.keys.summary(sku), this.keys.gate(sku), this.holdsKey(sku), this.keys.gatePending(sku), repair ? 1 : 0)) as number[];
      const [inflight, expectedInflight, unreflected, expectedUnreflected, duePending] = r.map(Number) as [number, number, number, number, number];
      out.push({ sku, inflight, expectedInflight, unreflected, expectedUnreflected, duePending, drift: inflight !== expectedInflight || unreflected !== expectedUnreflected || duePending > 0 });
    }
    return out;
  }
}

function parseIdem(text: string): IdempotencyRecord {
  const r = JSON.parse(text) as { h: string; s: string; o: string; r?: string };
  return { hash: r.h, state: r.s === 'done' ? 'done' : 'pending', holdId: r.o, ...(r.r ? { response: r.r } : {}) };
}
