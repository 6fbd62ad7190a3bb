/**
 * The purchase gate in Redis: the only module that calls the gate scripts (purchase/lua). Each
 * script is loaded once per connection with ioredis `defineCommand` (EVALSHA, NOSCRIPT fallback)
 * and called through one typed method here. Key layout in docs/purchase-path.md.
 */
import { execEach, isCluster, scanSkus, type LuaCommand, type RedisClient } from '../../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import { gateAvailable } from '../domain/gate-availability.ts';
import type { GateItem, GatePort, HoldAddress, HoldRecord, HoldRef, IdempotencyRecord, ReserveOutcome, ReserveRequest } from '../domain/ports.ts';
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

/** The rate buckets of a call that does not take them (taken apart, or not at all). */
const NO_LIMIT = Object.freeze({ capacity: 1, perSec: 0 });

const SCRIPTS = ['gate-reserve', 'gate-settle', 'gate-release', 'gate-uncount', 'gate-check-4', 'rate-take-1'] as const;

/** How many slots' reaper indexes one reaper pass reads on a cluster (a full sweep of 16384 every 32 passes). */
const REAP_SLOTS_PER_PASS = 512;

/** A purchase's items by the slot of their SKU, the first item's slot (the anchor) first. */
export function itemsBySlot<T extends { sku: string }>(items: readonly T[], slotOf: (sku: string) => number): Array<{ slot: number; items: T[] }> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = slotOf(item.sku);
    let g = groups.get(slot);
    if (!g) groups.set(slot, (g = []));
    g.push(item);
  }
  return [...groups].map(([slot, its]) => ({ slot, items: its }));
}

/** How long a release marker is kept: longer than any retry of the release (a day at least). */
export function limitReleaseMarkerTtlS(limits: Pick<GateLimits, 'idempotencyTtlS' | 'holdTtlMs'>): number {
  return Math.max(86_400, limits.idempotencyTtlS, Math.ceil(limits.holdTtlMs / 1000) * 2);
}

export class Gate implements GatePort {
  readonly keys: RedisKeys;
  private readonly redis: RedisClient;
  private readonly limits: GateLimits;
  private readonly cmd: Record<(typeof SCRIPTS)[number], LuaCommand>;
  /** On a cluster: the rate buckets are taken apart from the gate script (they live in other slots). */
  private readonly cluster: boolean;
  private reapCursor = 0;

  /** `limits` may be left out by users that only check or settle (reconciliation). */
  constructor(deps: { redis: RedisClient; prefix: string; limits?: GateLimits }) {
    this.redis = deps.redis;
    this.limits = deps.limits ?? DEFAULT_LIMITS;
    this.cluster = isCluster(deps.redis);
    this.keys = redisKeys(deps.prefix, { cluster: this.cluster });
    const cmd = {} as Record<(typeof SCRIPTS)[number], LuaCommand>;
    for (const name of SCRIPTS) cmd[name] = defineScript(deps.redis, name);
    this.cmd = cmd;
  }

  /** The record of a scoped key (`scopedIdempotencyKey`) of a purchase of `items`: in the first item's slot. */
  idemKey(key: string, items: readonly GateItem[]): string {
    return this.keys.idempotency(key, this.keys.slotOf(items[0]!.sku));
  }
  holdKey(holdId: string, items: readonly GateItem[]): string {
    return this.keys.hold(holdId, this.keys.slotOf(items[0]!.sku));
  }
  holdsKey(sku: string): string {
    return this.keys.gateHolds(sku);
  }
  customerKey(sku: string): string {
    return this.keys.gateCustomers(sku);
  }

  /**
   * One gate decision (gate-reserve.lua), atomic per slot. `idempotencyKey` is the scoped key;
   * `skipRate`: the rate limits were already taken (a waiting-room ticket takes them before it is
   * drawn). A purchase whose SKUs all share a slot (one SKU always) is one script call. One whose
   * SKUs span slots (on a cluster) is decided slot by slot: the first SKU's slot (the anchor)
   * holds the idempotency and hold records and the reaper's entry, each further slot takes its
   * items atomically; a refusal there gives back everything taken so far (`release`), and a
   * crash in between leaves a hold the reaper releases (docs/purchase-path.md, "Redis Cluster").
   */
  async reserve(a: ReserveRequest): Promise<ReserveOutcome> {
    const now = a.now ?? Date.now();
    const rateInScript = !a.skipRate && !this.cluster;
    if (!a.skipRate && this.cluster) {
      const limited = await this.takeRates(a.customerId, a.address, now);
      if (limited) return limited;
    }
    const groups = itemsBySlot(a.items, (sku) => this.keys.slotOf(sku));
    const multiSlot = groups.length > 1;
    const [anchor, ...others] = groups;
    const first = decodeReserve(await this.reserveCall(a, now, rateInScript, multiSlot, anchor!.slot, anchor!.items, false), anchor!.items);
    if (first.kind !== 'ok' || others.length === 0) return first;
    const hold: HoldRef = { holdId: a.holdId, idemKey: this.keys.idempotency(a.idempotencyKey, anchor!.slot), customerId: a.customerId, items: a.items };
    for (const g of others) {
      let outcome: ReserveOutcome;
      try {
        outcome = decodeReserve(await this.reserveCall(a, now, rateInScript, multiSlot, g.slot, g.items, true), g.items);
      } catch (err) {
        await this.release(hold).catch(() => undefined); // else the reaper releases it
        throw err;
      }
      if (outcome.kind !== 'ok') {
        await this.release(hold);
        return outcome;
      }
    }
    return { kind: 'ok' };
  }

  /** One gate-reserve.lua call: `items` of one slot; `part`: a further slot of a multi-slot purchase. */
  private async reserveCall(a: ReserveRequest, now: number, rateInScript: boolean, multiSlot: boolean, slot: number, items: GateItem[], part: boolean): Promise<Array<string | number>> {
    const L = this.limits;
    const hold = this.keys.hold(a.holdId, slot);
    const keys = [this.keys.idempotency(a.idempotencyKey, slot), hold, this.keys.unsettled(slot)];
    if (rateInScript) keys.push(this.keys.rateCustomer(a.customerId), this.keys.rateAddress(a.address));
    else keys.push(hold, hold); // untouched: no-limit buckets
    for (const i of items) keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
    keys.push(this.keys.epoch(slot)); // always last: gate-reserve.lua reads KEYS[#KEYS]
    const args = packArgs({
      now,
      holdId: a.holdId,
      hash: a.hash,
      customer: a.customerId,
      settleDeadline: now + L.settleTimeoutMs,
      idemTtl: L.idempotencyTtlS,
      custTtl: Math.max(L.idempotencyTtlS, Math.ceil(L.holdTtlMs / 1000) * 2),
      maxPerCustomer: L.maxPerCustomer,
      rateCustomer: rateInScript ? { capacity: L.rateCustomer.burst, perSec: L.rateCustomer.perSec } : NO_LIMIT,
      rateAddress: rateInScript ? { capacity: L.rateAddress.burst, perSec: L.rateAddress.perSec } : NO_LIMIT,
      items: items.map((i) => [i.sku, i.qty]),
      ...(a.channel ? { channel: a.channel } : {}),
      ...(part ? { part: true } : multiSlot ? { allItems: a.items.map((i) => [i.sku, i.qty]) } : {}),
    });
    keys.push(args);
    return (await this.cmd['gate-reserve'](keys.length - 1, ...keys)) as Array<string | number>;
  }

  /** On a cluster: the customer's and the address's token, apart from the gate (other slots). */
  async takeRates(customerId: string, address: string, now = Date.now()): Promise<ReserveOutcome | undefined> {
    const L = this.limits;
    const take = (key: string, r: { perSec: number; burst: number }) =>
      r.perSec <= 0 ? Promise.resolve(0) : this.cmd['rate-take-1'](key, packArgs({ now, bucket: { capacity: r.burst, perSec: r.perSec } })).then(Number);
    const [c, ad] = await Promise.all([take(this.keys.rateCustomer(customerId), L.rateCustomer), take(this.keys.rateAddress(address), L.rateAddress)]);
    if (c > 0) return { kind: 'limited', scope: 'customer', retryAfterMs: c };
    if (ad > 0) return { kind: 'limited', scope: 'address', retryAfterMs: ad };
    return undefined;
  }

  /**
   * The write-back committed: `versions` maps each SKU to its version right after it. Slots other
   * than the anchor's first (each item guarded by its gate:holds entry, so a repeat is a no-op),
   * then the anchor's, whose hold state makes the whole call idempotent.
   */
  async settle(hold: Omit<HoldRef, 'customerId'>, versions: Map<string, number>, response: string): Promise<boolean> {
    const [anchor, ...others] = itemsBySlot(hold.items, (sku) => this.keys.slotOf(sku));
    const call = async (slot: number, items: GateItem[], part: boolean) => {
      const keys = [hold.idemKey, this.keys.hold(hold.holdId, slot), this.keys.unsettled(slot)];
      if (part) keys[0] = keys[1]!; // untouched by a part call; the idempotency key is the anchor's
      const args: Array<[string, number, number]> = [];
      for (const i of items) {
        keys.push(this.keys.summary(i.sku), this.keys.gate(i.sku), this.holdsKey(i.sku), this.keys.gatePending(i.sku));
        const v = versions.get(i.sku);
        if (v === undefined) throw new Error(`no write-back version for ${i.sku}`);
        args.push([i.sku, i.qty, v]);
      }
      const packed = packArgs({ holdId: hold.holdId, idemTtl: this.limits.idempotencyTtlS, holdTtl: Math.ceil(this.limits.holdTtlMs / 1000) + 3600, response, items: args, ...(part ? { part: true } : {}) });
      return Number(await this.cmd['gate-settle'](keys.length, ...keys, packed)) === 1;
    };
    for (const g of others) await call(g.slot, g.items, true);
    return call(anchor!.slot, anchor!.items, false);
  }

  /** The write-back did not and will not commit: units back to the gate (other slots first, as settle). */
  async release(hold: HoldRef): Promise<boolean> {
    const [anchor, ...others] = itemsBySlot(hold.items, (sku) => this.keys.slotOf(sku));
    const call = async (slot: number, items: GateItem[], part: boolean) => {
      const keys = [hold.idemKey, this.keys.hold(hold.holdId, slot), this.keys.unsettled(slot)];
      if (part) keys[0] = keys[1]!;
      for (const i of items) keys.push(this.keys.gate(i.sku), this.holdsKey(i.sku), this.customerKey(i.sku));
      const args = packArgs({ holdId: hold.holdId, customer: hold.customerId, items: items.map((i) => [i.sku, i.qty]), ...(part ? { part: true } : {}) });
      return Number(await this.cmd['gate-release'](keys.length, ...keys, args)) === 1;
    };
    for (const g of others) await call(g.slot, g.items, true);
    return call(anchor!.slot, anchor!.items, false);
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

  /**
   * Holds whose settle deadline has passed (the reaper's work list). One server: its one index.
   * A cluster: the indexes of the next REAP_SLOTS_PER_PASS slots, round robin (each slot's holds
   * are indexed in that slot, atomically with their reservation).
   */
  async overdueHolds(now: number, limit: number): Promise<HoldAddress[]> {
    const n = Math.min(this.keys.slots, REAP_SLOTS_PER_PASS);
    const slots = Array.from({ length: n }, (_, i) => (this.reapCursor + i) % this.keys.slots);
    this.reapCursor = (this.reapCursor + n) % this.keys.slots;
    const replies = await execEach(this.redis, slots, (slot) => this.keys.unsettled(slot), (p, slot) => p.zrangebyscore(this.keys.unsettled(slot), '-inf', now, 'LIMIT', 0, limit));
    const out: HoldAddress[] = [];
    replies.forEach(([err, ids], i) => {
      if (err) throw err;
      for (const holdId of ids as string[]) out.push({ holdId, slot: slots[i]! });
    });
    return out.slice(0, limit);
  }

  async readHold(at: HoldAddress): Promise<HoldRecord | null> {
    const h = await this.redis.hgetall(this.keys.hold(at.holdId, at.slot));
    if (!h.state) return null;
    const items = (JSON.parse(h.items ?? '[]') as Array<[string, number]>).map(([sku, qty]) => ({ sku, qty }));
    return { holdId: at.holdId, state: h.state as HoldRecord['state'], customerId: h.customer ?? '', idemKey: h.idem ?? '', items, acceptedAt: Number(h.at ?? 0) };
  }

  /** Removes a hold from the reaper's index when its record is gone (nothing left to settle). */
  async forgetHold(at: HoldAddress): Promise<void> {
    await this.redis.zrem(this.keys.unsettled(at.slot), at.holdId);
  }

  async readIdempotency(key: string, items: readonly GateItem[]): Promise<IdempotencyRecord | null> {
    const v = await this.redis.get(this.idemKey(key, items));
    return v ? parseIdem(v) : null;
  }

  /** The gate's view of a SKU: committed availability and the two gate terms. */
  async state(sku: string): Promise<{ viewAvailable: number | null; version: number; inflight: number; unreflected: number; available: number | null }> {
    const [view, gate] = await Promise.all([
      this.redis.hmget(this.keys.summary(sku), 'available', 'version', 'backorderable'),
      this.redis.hmget(this.keys.gate(sku), 'inflight', 'unreflected'),
    ]);
    const viewAvailable = view[0] == null ? null : Number(view[0]);
    const inflight = Number(gate[0] ?? 0);
    const unreflected = Number(gate[1] ?? 0);
    const viewBackorderable = Number(view[2] ?? 0);
    return { viewAvailable, version: Number(view[1] ?? 0), inflight, unreflected, available: viewAvailable === null ? null : gateAvailable({ viewAvailable, viewBackorderable, inflight, unreflected }) };
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

/** A gate-reserve.lua reply; item positions are 1-based in `items` (the call's items). */
function decodeReserve(reply: Array<string | number>, items: readonly GateItem[]): ReserveOutcome {
  const item = (i: unknown) => items[Number(i) - 1]?.sku ?? '';
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
    case SCRIPT_CODE.CHANNEL_PENDING:
      return { kind: 'channel_pending', sku: item(reply[1]) };
    default:
      throw new Error(`unexpected gate-reserve reply: ${JSON.stringify(reply)}`);
  }
}

function parseIdem(text: string): IdempotencyRecord {
  const r = JSON.parse(text) as { h: string; s: string; o: string; r?: string };
  return { hash: r.h, state: r.s === 'done' ? 'done' : 'pending', holdId: r.o, ...(r.r ? { response: r.r } : {}) };
}
