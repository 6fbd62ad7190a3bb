/**
 * The Redis side of the platform on a real Redis Cluster (issue 12): every script's keys in one
 * slot, purchases whose SKUs span slots (and nodes) decided slot by slot and never oversold, the
 * reaper's per-slot indexes, the per-slot epoch, SCANs over every master. Needs a Redis Cluster
 * (the cluster topology: tests/cluster/setup.ts); Postgres and Kafka are not used here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import { createRedis, isCluster, masters, type RedisClient } from '../../lib/redis.ts';
import { Gate, type GateLimits } from '../../purchase/adapters/gate.ts';
import { RedisViews } from '../../stream-processors/adapters/redis-views.ts';
import { fromRedisError } from '../../lib/driver-errors.ts';
import { UnavailableError } from '../../lib/errors.ts';
import { markEpoch } from '../../stream-processors/epoch.ts';
import { clusterConfig } from './setup.ts';

const config = clusterConfig();
const prefix = `rc${Date.now().toString(36)}`;
let redis: RedisClient;
let gate: Gate;
let views: RedisViews;

const limits: GateLimits = {
  maxPerCustomer: 0,
  rateCustomer: { perSec: 1, burst: 3 },
  rateAddress: { perSec: 0, burst: 1 },
  idempotencyTtlS: 600,
  settleTimeoutMs: 1000,
  holdTtlMs: 60_000,
};

let skuCounter = 0;

/** `n` fresh SKUs whose slots are served by `n` different masters (so a purchase of them spans nodes). */
function skusOnDistinctNodes(n: number): string[] {
  const table = (redis as unknown as { slots: string[][] }).slots;
  const out: string[] = [];
  const nodes = new Set<string>();
  for (let tries = 0; out.length < n && tries < 100_000; tries++) {
    const sku = `${prefix}-SKU-${skuCounter++}`;
    const node = table[calculateSlot(`${prefix}:{${sku}}`)]![0]!;
    if (!nodes.has(node)) {
      nodes.add(node);
      out.push(sku);
    }
  }
  return out;
}

/**
 * Moves `slot` to another master the way `redis-cli --cluster reshard` does: IMPORTING on the
 * target, MIGRATING on the source, MIGRATE of its keys in batches, then the new owner announced
 * to every master. Clients meanwhile get ASK/TRYAGAIN redirections, which ioredis follows.
 */
async function migrateSlot(slot: number): Promise<void> {
  if (!isCluster(redis)) throw new Error('not a cluster');
  const nodes = redis.nodes('master');
  const ids = await Promise.all(nodes.map(async (n) => String(await n.call('CLUSTER', 'MYID'))));
  const owner = (redis as unknown as { slots: string[][] }).slots[slot]![0]!;
  const si = nodes.findIndex((n) => `${n.options.host}:${n.options.port}` === owner);
  const ti = (si + 1) % nodes.length;
  const [source, target] = [nodes[si]!, nodes[ti]!];
  await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[si]!);
  await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[ti]!);
  const auth = target.options.password ? ['AUTH2', target.options.username || 'default', target.options.password] : [];
  for (;;) {
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 20)) as string[];
    if (keys.length === 0) break;
    await source.call('MIGRATE', target.options.host ?? '127.0.0.1', target.options.port ?? 6379, '', 0, 5000, ...auth, 'KEYS', ...keys);
    await new Promise((r) => setTimeout(r, 5)); // let the burst interleave
  }
  for (const n of [target, source, ...nodes.filter((_, i) => i !== si && i !== ti)]) await n.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[ti]!);
}

async function stock(sku: string, units: number, version = 1): Promise<void> {
  await views.applyBatch([{ sku, locationId: 'WH-1', deleted: false, onHand: units, reserved: 0, safetyStock: 0, version, commitTs: Date.now() }]);
}

let n = 0;
const reserve = (items: Array<{ sku: string; qty: number }>, customerId = `c-${++n}`) =>
  gate.reserve({ holdId: `h-${prefix}-${++n}`, idempotencyKey: `${customerId}:k-${n}`, hash: 'h', customerId, address: '127.0.0.1', items });

beforeAll(async () => {
  redis = createRedis(config.redis);
  await redis.ping();
  gate = new Gate({ redis, prefix, limits });
  views = new RedisViews({ redis, prefix });
  await markEpoch(redis, prefix, { test: true });
});

afterAll(async () => {
  redis?.disconnect();
});

describe('Redis Cluster', () => {
  it('is a cluster client of three or more masters', () => {
    expect(isCluster(redis)).toBe(true);
    expect(masters(redis).length).toBeGreaterThanOrEqual(3);
  });

  it('takes a purchase whose SKUs live on three nodes, all or nothing, and settles it', async () => {
    const [a, b, c] = skusOnDistinctNodes(3) as [string, string, string];
    for (const s of [a, b, c]) await stock(s, 5);
    const items = [{ sku: a, qty: 2 }, { sku: b, qty: 3 }, { sku: c, qty: 1 }];
    const holdId = `h-${prefix}-span`;
    const ok = await gate.reserve({ holdId, idempotencyKey: 'cx:k-span', hash: 'h', customerId: 'cx', address: '127.0.0.1', items });
    expect(ok).toEqual({ kind: 'ok' });
    expect((await gate.state(a)).available).toBe(3);
    expect((await gate.state(b)).available).toBe(2);
    expect((await gate.state(c)).available).toBe(4);
    // a replay of the same key is answered from the anchor slot's record
    const replay = await gate.reserve({ holdId: 'other', idempotencyKey: 'cx:k-span', hash: 'h', customerId: 'cx', address: '127.0.0.1', items });
    expect(replay.kind).toBe('replay');
    // the write-back committed at version 2 of each SKU; the views are still at 1
    const settled = await gate.settle({ holdId, idemKey: gate.idemKey('cx:k-span', items), items }, new Map([[a, 2], [b, 2], [c, 2]]), '{"ok":1}');
    expect(settled).toBe(true);
    for (const [s, qty] of [[a, 2], [b, 3], [c, 1]] as const) {
      const st = await gate.state(s);
      expect({ inflight: st.inflight, unreflected: st.unreflected }).toEqual({ inflight: 0, unreflected: qty });
    }
    // the CDC of the write-back reaches each view: unreflected leaves in the same step
    await stock(a, 5, 2);
    expect((await gate.state(a)).unreflected).toBe(0);
    // settling again is a no-op
    expect(await gate.settle({ holdId, idemKey: gate.idemKey('cx:k-span', items), items }, new Map([[a, 2], [b, 2], [c, 2]]), '')).toBe(false);
    expect((await gate.state(b)).unreflected).toBe(3);
  });

  it('a refusal in a later slot gives back what earlier slots took, and forgets the key', async () => {
    const [a, b] = skusOnDistinctNodes(2) as [string, string];
    await stock(a, 5);
    await stock(b, 1);
    const items = [{ sku: a, qty: 2 }, { sku: b, qty: 2 }];
    const r = await gate.reserve({ holdId: `h-${prefix}-refused`, idempotencyKey: 'cy:k-1', hash: 'h', customerId: 'cy', address: '127.0.0.1', items });
    expect(r).toEqual({ kind: 'sold_out', sku: b, available: 1 });
    expect((await gate.state(a)).inflight).toBe(0);
    expect((await gate.state(b)).inflight).toBe(0);
    expect(await gate.readIdempotency('cy:k-1', items)).toBeNull();
    expect(await gate.readHold({ holdId: `h-${prefix}-refused`, slot: calculateSlot(`${prefix}:{${a}}`) })).toBeNull();
  });

  it('never oversells a SKU bought alone and in spanning carts at once', async () => {
    const [hot, other] = skusOnDistinctNodes(2) as [string, string];
    await stock(hot, 20);
    await stock(other, 1000);
    const attempts = Array.from({ length: 120 }, (_, i) =>
      i % 2 === 0 ? reserve([{ sku: hot, qty: 1 }], `solo-${i}`) : reserve([{ sku: other, qty: 1 }, { sku: hot, qty: 1 }], `cart-${i}`),
    );
    const results = await Promise.all(attempts);
    const ok = results.filter((r) => r.kind === 'ok').length;
    expect(ok).toBe(20);
    expect((await gate.state(hot)).available).toBe(0);
    // the carts refused on `hot` gave their `other` unit back
    const cartsOk = results.filter((r, i) => i % 2 === 1 && r.kind === 'ok').length;
    expect((await gate.state(other)).inflight).toBe(cartsOk);
  });

  it('the reaper finds an unsettled spanning hold in its slot and releases every slot of it', async () => {
    const [a, b] = skusOnDistinctNodes(2) as [string, string];
    await stock(a, 3);
    await stock(b, 3);
    const items = [{ sku: a, qty: 1 }, { sku: b, qty: 2 }];
    const holdId = `h-${prefix}-crash`;
    expect((await gate.reserve({ holdId, idempotencyKey: 'cz:k-1', hash: 'h', customerId: 'cz', address: '127.0.0.1', items })).kind).toBe('ok');
    // the gateway "dies" here: no settle, no release. The reaper sweeps 512 slots a pass.
    const slot = calculateSlot(`${prefix}:{${a}}`);
    let found;
    for (let pass = 0; pass < 40 && !found; pass++) found = (await gate.overdueHolds(Date.now() + 5000, 100)).find((h) => h.holdId === holdId);
    expect(found).toEqual({ holdId, slot });
    const hold = await gate.readHold(found!);
    expect(hold?.items).toEqual(items);
    expect(await gate.release(hold!)).toBe(true);
    expect((await gate.state(a)).inflight).toBe(0);
    expect((await gate.state(b)).inflight).toBe(0);
  });

  it('takes the customer rate limit apart from the gate (its bucket is in another slot)', async () => {
    const [a] = skusOnDistinctNodes(1) as [string];
    await stock(a, 100);
    const out = [];
    for (let i = 0; i < 5; i++) out.push((await reserve([{ sku: a, qty: 1 }], 'rate-limited')).kind);
    expect(out.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
    expect(out.slice(3)).toEqual(['limited', 'limited']);
  });

  it('refuses only the SKUs of a slot that lost its epoch marker', async () => {
    const [a, b] = skusOnDistinctNodes(2) as [string, string];
    await stock(a, 3);
    await stock(b, 3);
    const slotA = calculateSlot(`${prefix}:{${a}}`);
    await redis.del(gate.keys.epoch(slotA));
    expect((await reserve([{ sku: a, qty: 1 }])).kind).toBe('rebuilding');
    expect((await reserve([{ sku: b, qty: 1 }])).kind).toBe('ok');
    expect((await reserve([{ sku: b, qty: 1 }, { sku: a, qty: 1 }])).kind).toBe('rebuilding');
    expect((await gate.state(b)).inflight).toBe(1); // the cart refused in a's slot gave b's unit back
    await markEpoch(redis, prefix, { test: true });
  });

  it('moves a hot SKU\'s slot to another master during a burst: no error reaches a buyer, nothing oversold, no state lost', async () => {
    const [hot] = skusOnDistinctNodes(1) as [string];
    await stock(hot, 40);
    const slot = calculateSlot(`${prefix}:{${hot}}`);
    const burst = (from: number) => Promise.all(Array.from({ length: 60 }, (_, i) => reserve([{ sku: hot, qty: 1 }], `mig-${from + i}`)));
    const before = await burst(0);
    const moving = migrateSlot(slot);
    const during = await burst(1000);
    await moving;
    const after = await burst(2000);
    const all = [...before, ...during, ...after];
    expect(all.filter((r) => r.kind !== 'ok' && r.kind !== 'sold_out')).toEqual([]);
    expect(all.filter((r) => r.kind === 'ok').length).toBe(40);
    const st = await gate.state(hot);
    expect({ available: st.available, inflight: st.inflight }).toEqual({ available: 0, inflight: 40 });
    // every hold's record and the reaper's entries moved with the slot
    expect(await redis.zcard(gate.keys.unsettled(slot))).toBe(40);
  });

  it('names the nodes when none of REDIS_CLUSTER_NODES answers, and the error is "unavailable"', async () => {
    const dead = createRedis({ url: 'redis://127.0.0.1:1', cluster: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }] }, { lazy: true });
    const first = new Promise<Error>((resolve) => dead.once('error', resolve));
    dead.connect().catch(() => undefined);
    const err = await first;
    dead.disconnect();
    expect(err.message).toMatch(/^Redis Cluster not reachable: none of the nodes 127\.0\.0\.1:1, 127\.0\.0\.1:2 answered/);
    expect(fromRedisError(err)).toBeInstanceOf(UnavailableError);
  });

  it('marks SKUs of several nodes and slots published in one pass (one call per slot)', async () => {
    const skus = [...skusOnDistinctNodes(3), ...Array.from({ length: 20 }, () => `${prefix}-MARK-${skuCounter++}`)];
    await views.markPublished(new Map(skus.map((s, i) => [s, i + 1])));
    const marks = await Promise.all(skus.map(async (s) => (await views.readSummary(s)).published));
    expect(marks).toEqual(skus.map((_, i) => String(i + 1)));
  });

  it('finds the views of every node by SCAN', async () => {
    const skus = skusOnDistinctNodes(3);
    for (const s of skus) await stock(s, 1);
    const seen = new Set<string>();
    for await (const page of views.scanSkus()) for (const s of page) seen.add(s);
    for (const s of skus) expect(seen.has(s)).toBe(true);
  });
});
