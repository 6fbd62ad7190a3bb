/**
 * The purchase gate in Redis: the only module that calls the gate scripts (purchase/lua). Each
 * script is loaded once per connection with ioredis `defineCommand` (EVALSHA, NOSCRIPT fallback)
 * and called through one typed method here. Key layout in docs/purchase-path.md.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { defineLuaCommand, type LuaCommand } from '../../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';

const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lua');

export interface GateItem {
  sku: string;
  qty: number;
}

export interface HoldRecord {
  holdId: string;
  state: 'inflight' | 'written';
  customerId: string;
  idemKey: string;
  items: GateItem[];
  acceptedAt: number;
}

export interface IdempotencyRecord {
  /** Hash of the request the key was first used with. */
  hash: string;
  state: 'pending' | 'done';
  holdId: string;
  /** The original 201 body, once written back. */
  response?: string;
}

export type ReserveOutcome =
  | { kind: 'ok' }
  /** Redis lost its data and is being rebuilt from Postgres (stream-processors/epoch.ts). */
  | { kind: 'rebuilding' }
  | { kind: 'replay'; record: IdempotencyRecord }
  | { kind: 'limited'; scope: 'customer' | 'address'; retryAfterMs: number }
  | { kind: 'unknown'; sku: string }
  | { kind: 'sold_out'; sku: string; available: number }
  | { kind: 'limit'; sku: string; bought: number };

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

/**
 * An Idempotency-Key as stored in Redis: scoped by the customer, so one customer's key can never
 * replay (or block) another customer's purchase. The customer part is URI-encoded (no `:`).
 */
export function scopedIdempotencyKey(customerId: string, key: string): string {
  return `${encodeURIComponent(customerId)}:${key}`;
}

const SCRIPTS = ['gate-reserve', 'gate-settle', 'gate-release', 'gate-uncount', 'gate-check-4'] as const;

/** How long a release marker is kept: longer than any retry of the release (a day at least). */
export function limitReleaseMarkerTtlS(limits: Pick<GateLimits, 'idempotencyTtlS' | 'holdTtlMs'>): number {
  return Math.max(86_400, limits.idempotencyTtlS, Math.ceil(limits.holdTtlMs / 1000) * 2);
}

export class Gate {
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
    for (const name of SCRIPTS) cmd[name] = defineLuaCommand(deps.redis, `inv_${name.replace(/-/g, '_')}`, path.join(LUA_DIR, `${name}.lua`));
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
  async reserve(a: { holdId: string; idempotencyKey: string; hash: string; customerId: string; address: string; items: GateItem[]; now?: number; skipRate?: boolean }): Promise<ReserveOutcome> {
    const now = a.now ?? Date.now();
    const L = a.skipRate ? { ...this.limits, rateCustomer: { perSec: 0, burst: 1 }, rateAddress: { perSec: 0, burst: 1 } } : this.limits;
    const keys = [this.idemKey(a.idempotencyKey), this.holdKey(a.holdId), this.unsettledKey, this.keys.rateCustomer(a.customerId), this.keys.rateAddress(a.address)];
    for (const i of a.items) keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
    const args: Array<string | number> = [
      now, a.holdId, a.hash, a.customerId, now + L.settleTimeoutMs, L.idempotencyTtlS,
      L.rateCustomer.burst, L.rateCustomer.perSec, L.rateAddress.burst, L.rateAddress.perSec,
      L.maxPerCustomer, Math.max(L.idempotencyTtlS, Math.ceil(L.holdTtlMs / 1000) * 2), a.items.length,
    ];
    for (const i of a.items) args.push(i.sku, i.qty);
    keys.push(this.keys.epoch); // always last: gate-reserve.lua reads KEYS[#KEYS]
    const reply = (await this.cmd['gate-reserve'](keys.length, ...keys, ...args)) as Array<string | number>;
    switch (reply[0]) {
      case 'ok':
        return { kind: 'ok' };
      case 'rebuilding':
        return { kind: 'rebuilding' };
      case 'replay':
        return { kind: 'replay', record: parseIdem(String(reply[1])) };
      case 'limited':
        return { kind: 'limited', scope: reply[1] === 'address' ? 'address' : 'customer', retryAfterMs: Number(reply[2]) };
      case 'unknown':
        return { kind: 'unknown', sku: String(reply[1]) };
      case 'sold_out':
        return { kind: 'sold_out', sku: String(reply[1]), available: Number(reply[2]) };
      case 'limit':
        return { kind: 'limit', sku: String(reply[1]), bought: Number(reply[2]) };
      default:
        throw new Error(`unexpected gate-reserve reply: ${JSON.stringify(reply)}`);
    }
  }

  /** The write-back committed: `versions` maps each SKU to its version right after it. */
  async settle(hold: { holdId: string; idemKey: string; items: GateItem[] }, versions: Map<string, number>, response: string): Promise<boolean> {
    const keys = [hold.idemKey, this.holdKey(hold.holdId), this.unsettledKey];
    const args: Array<string | number> = [hold.holdId, this.limits.idempotencyTtlS, Math.ceil(this.limits.holdTtlMs / 1000) + 3600, response, hold.items.length];
    for (const i of hold.items) {
      keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.keys.gatePending(i.sku));
      const v = versions.get(i.sku);
      if (v === undefined) throw new Error(`no write-back version for ${i.sku}`);
      args.push(i.sku, i.qty, v);
    }
    return Number(await this.cmd['gate-settle'](keys.length, ...keys, ...args)) === 1;
  }

  /** The write-back did not and will not commit: units back to the gate. */
  async release(hold: { holdId: string; idemKey: string; customerId: string; items: GateItem[] }): Promise<boolean> {
    const keys = [hold.idemKey, this.holdKey(hold.holdId), this.unsettledKey];
    const args: Array<string | number> = [hold.holdId, hold.customerId, hold.items.length];
    for (const i of hold.items) {
      keys.push(this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
      args.push(i.sku, i.qty);
    }
    return Number(await this.cmd['gate-release'](keys.length, ...keys, ...args)) === 1;
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
    return { viewAvailable, version: Number(view[1] ?? 0), inflight, unreflected, available: viewAvailable === null ? null : viewAvailable - inflight - unreflected };
  }

  /** SKUs that have gate state, in pages (SCAN). */
  async *scanGateSkus(count = 1000): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.keys.gatePattern, 'COUNT', count);
      cursor = next;
      const skus = keys.map((k) => this.keys.skuFromGateKey(k)).filter((s): s is string => s !== undefined);
      if (skus.length) yield skus;
    } while (cursor !== '0');
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
