import { describe, expect, it } from 'vitest';
import { DEFAULT_LOAD, fanoutPerSubscriber, model, ModelInputError, solveLinear, type Load, type UnitCosts } from './model.ts';
import { defaultOrders, parseCli } from './calc.ts';

// Round numbers so that every expectation can be checked by hand.
const COSTS: UnitCosts = {
  gatewayUsPerAttempt: 100,
  gatewayUsPerHotAttempt: 100,
  gatewayUsPerAcceptedPurchase: 500,
  gatewayFixedCores: 0,
  gatewayUsPerFeedEntry: 10,
  gatewayUsPerFrame: 10,
  gatewayUsPerItem: 1,
  gatewayBytesPerConnection: 4096,
  gatewayBytesPerSubscribedSku: 150,
  redisUsPerAttempt: 20,
  redisUsPerHotAttempt: 25,
  redisUsPerAcceptedPurchase: 100,
  redisUsPerApply: 10,
  redisUsPerFeedEntryRead: 1,
  processorUsPerChange: 100,
  connectUsPerChange: 50,
  connectUsPerOrder: 200,
  kafkaUsPerChange: 20,
  postgresUsPerChange: 50,
  postgresUsPerTransaction: 150,
  postgresUsPerOrder: 400,
};

const load = (over: Partial<Load>): Load => ({ ...DEFAULT_LOAD, ...over });

describe('fanoutPerSubscriber', () => {
  it('sends every change when changes are rare compared with the tick', () => {
    // 0.1 change/s per SKU, 10 SKUs: 1 change/s per subscriber, almost never two in one 25 ms tick.
    const r = fanoutPerSubscriber(1000, 10_000, 10, 25);
    expect(r.items).toBeCloseTo(1, 1);
    expect(r.frames).toBeCloseTo(1, 1);
    // 10 changes/s per subscriber: two land in one tick often enough to share a frame (40 x (1 - e^-0.25)).
    expect(fanoutPerSubscriber(1000, 1000, 10, 25).frames).toBeCloseTo(40 * (1 - Math.exp(-0.25)), 6);
  });

  it('caps a connection at one frame per tick and one item per SKU per tick', () => {
    const r = fanoutPerSubscriber(1e9, 100, 100, 25);
    expect(r.frames).toBeCloseTo(40, 6);
    expect(r.items).toBeCloseTo(4000, 3);
  });

  it('never counts more subscribed SKUs than the catalog has', () => {
    expect(fanoutPerSubscriber(100, 10, 1000, 25)).toEqual(fanoutPerSubscriber(100, 10, 10, 25));
  });
});

describe('model', () => {
  it('needs nothing for no load', () => {
    const n = model(load({}), COSTS);
    expect(n.gateways.count).toBe(0);
    expect(n.redis.masters).toBe(0);
    expect(n.processors.count).toBe(0);
    expect(n.kafka.partitions).toBe(0);
    expect(n.firstBottleneck.utilisation).toBe(0);
  });

  it('sizes gateways by CPU for purchases: attempts x cost / (utilisation x core)', () => {
    // 14,000 refused attempts/s x 100 µs = 1.4 cores; at 70 % per gateway: 2 gateways.
    const n = model(load({ attemptsPerSec: 14_000, hotSkuShare: 0 }), COSTS);
    expect(n.gateways.count).toBe(2);
    expect(n.gateways.coresDemand).toBeCloseTo(1.4, 6);
    expect(n.redis.coresDemand).toBeCloseTo((14_000 * 20) / 1e6, 6);
  });

  it('puts the hot-SKU ceiling at one Redis core: 1e6 / µs per attempt', () => {
    const n = model(load({ attemptsPerSec: 16_667, hotSkuShare: 1, hotSkuWaitingRoom: true, hotSkuUnits: 1000 }), COSTS);
    expect(n.hotSku.ceilingAttemptsPerSec).toBe(40_000); // 1e6 / 25
    expect(n.hotSku.utilisation).toBeCloseTo((16_667 * 25) / 1e6, 6);
    expect(n.hotSku.waitingRoom).toEqual({ admitted: 1500, secondsToAdmitAll: 1500 / 16_667 });
    // Without the waiting room the plain gate's cost applies.
    expect(model(load({ attemptsPerSec: 16_667, hotSkuWaitingRoom: false }), COSTS).hotSku.ceilingAttemptsPerSec).toBe(50_000);
  });

  it('reports the hot slot as what breaks first when one SKU gets more than one core of gate calls', () => {
    const n = model(load({ attemptsPerSec: 60_000, hotSkuShare: 1 }), COSTS);
    expect(n.firstBottleneck.resource).toMatch(/hot SKU/);
    expect(n.firstBottleneck.utilisation).toBeCloseTo(1.5, 6);
    // More Redis masters do not help the one slot, but are still sized for the total.
    expect(n.redis.masters).toBeGreaterThanOrEqual(3);
  });

  it('counts the feed read once per gateway and refuses when one gateway cannot read it', () => {
    // 20,000 entries/s x 10 µs = 0.2 core per gateway before any fan-out.
    const n = model(load({ subscribers: 1000, changesPerSec: 20_000 }), COSTS);
    expect(n.gateways.feedShareOfCore).toBeCloseTo(0.2, 6);
    const over = model(load({ subscribers: 1000, changesPerSec: 80_000 }), COSTS); // 0.8 core > 70 %
    expect(over.gateways.count).toBe(Number.POSITIVE_INFINITY);
    expect(over.limits.find((l) => l.resource.includes('whole feed'))!.utilisation).toBeCloseTo(0.8, 6);
  });

  it('adds each gateway\'s fixed cost to its feed read', () => {
    const n = model(load({ subscribers: 1000, changesPerSec: 20_000 }), { ...COSTS, gatewayFixedCores: 0.1 });
    expect(n.gateways.feedShareOfCore).toBeCloseTo(0.3, 6);
  });

  it('puts every gateway\'s feed reads on the one master that holds the feed stream', () => {
    // 3 gateways (by connections) x 20,000 entries/s x 1 µs = 0.06 core of the feed's master.
    const n = model(load({ subscribers: 150_000, changesPerSec: 20_000, catalogSkus: 1e9 }), { ...COSTS, gatewayUsPerFrame: 0, gatewayUsPerItem: 0 });
    expect(n.gateways.count).toBe(3);
    expect(n.limits.find((l) => l.resource.includes('feed stream'))!.utilisation).toBeCloseTo(0.06, 6);
  });

  it('sizes gateways by connections when memory binds first', () => {
    // 1,000,000 subscribers x (4096 + 20 x 150) B = 7.1 GB; 1 GiB per gateway: 152 gateways.
    const n = model(load({ subscribers: 1_000_000, skusPerSubscriber: 20, gatewayMemoryBytes: 2 ** 30, maxConnectionsPerGateway: 1e9 }), COSTS);
    expect(n.gateways.connectionsPerGateway).toBe(Math.floor(2 ** 30 / 7096));
    expect(n.gateways.byConnections).toBe(Math.ceil(1_000_000 / Math.floor(2 ** 30 / 7096)));
    expect(n.gateways.count).toBe(n.gateways.byConnections);
  });

  it('sizes processors and partitions from changes, orders included', () => {
    // (20,000 + 1,000) changes/s x 100 µs = 2.1 cores: 3 processors at 70 %; partitions 2 x 3 = 6.
    const n = model(load({ changesPerSec: 20_000, attemptsPerSec: 1000, ordersPerSec: 1000, hotSkuShare: 0 }), COSTS);
    expect(n.rates.changesPerSec).toBe(21_000);
    expect(n.processors.count).toBe(3);
    expect(n.kafka.partitions).toBe(6);
    const big = model(load({ changesPerSec: 100_000 }), COSTS); // 10 cores: 15 processors, 30 partitions
    expect(big.processors.count).toBe(15);
    expect(big.kafka.partitions).toBe(30);
  });

  it('names the single Debezium task when stock changes exceed one core of capture', () => {
    // 25,000 changes/s x 50 µs = 1.25 cores of one task.
    const n = model(load({ changesPerSec: 25_000, catalogSkus: 1_000_000 }), COSTS);
    expect(n.firstBottleneck.resource).toMatch(/Debezium stock/);
    expect(n.firstBottleneck.utilisation).toBeCloseTo(1.25, 6);
    expect(n.connect.stockTaskCores).toBeCloseTo(1.25, 6);
  });

  it('charges Postgres a commit per transaction, shared by the rows in it', () => {
    // single-row: 1,000 x (50 + 150) µs = 0.2 core; 100 rows per transaction: 1,000 x (50 + 1.5) µs.
    expect(model(load({ changesPerSec: 1000 }), COSTS).postgres.coresDemand).toBeCloseTo(0.2, 6);
    expect(model(load({ changesPerSec: 1000, changesPerTransaction: 100 }), COSTS).postgres.coresDemand).toBeCloseTo(0.0515, 6);
  });

  it('sorts the single points busiest first', () => {
    const n = model(load({ attemptsPerSec: 10_000, changesPerSec: 5000 }), COSTS);
    for (let i = 1; i < n.limits.length; i++) expect(n.limits[i - 1]!.utilisation).toBeGreaterThanOrEqual(n.limits[i]!.utilisation);
  });

  it('refuses impossible inputs with a message naming the flag', () => {
    expect(() => model(load({ attemptsPerSec: -1 }), COSTS)).toThrow(/--attempts-per-sec/);
    expect(() => model(load({ hotSkuShare: 2 }), COSTS)).toThrow(/--hot-sku-share/);
    expect(() => model(load({ targetUtilisation: 0 }), COSTS)).toThrow(/--target-utilisation/);
    expect(() => model(load({ attemptsPerSec: 10, ordersPerSec: 20 }), COSTS)).toThrow(/cannot exceed/);
    expect(() => model(load({}), { ...COSTS, processorUsPerChange: Number.NaN })).toThrow(ModelInputError);
  });
});

describe('solveLinear', () => {
  it('recovers the coefficients of an exact system', () => {
    const x = solveLinear(
      [
        [2000, 40, 2850],
        [5, 9400, 10_000],
        [200, 80_000, 400_000],
      ],
      [2000 * 30 + 40 * 8 + 2850 * 1.5, 5 * 30 + 9400 * 8 + 10_000 * 1.5, 200 * 30 + 80_000 * 8 + 400_000 * 1.5],
    );
    expect(x[0]).toBeCloseTo(30, 6);
    expect(x[1]).toBeCloseTo(8, 6);
    expect(x[2]).toBeCloseTo(1.5, 6);
  });

  it('throws on a singular system', () => {
    expect(() => solveLinear([[1, 2], [2, 4]], [1, 2])).toThrow(/singular/);
  });
});

describe('calculator flags', () => {
  it('reads the load flags', () => {
    const c = parseCli(['--attempts-per-sec', '16667', '--subscribers', '1_000_000', '--changes-per-sec', '20000', '--gateway-memory-gib', '2', '--json']);
    expect(c.load.attemptsPerSec).toBe(16_667);
    expect(c.load.subscribers).toBe(1_000_000);
    expect(c.load.changesPerSec).toBe(20_000);
    expect(c.load.gatewayMemoryBytes).toBe(2 * 2 ** 30);
    expect(c.json).toBe(true);
    expect(c.ordersGiven).toBe(false);
  });

  it('reads cost overrides', () => {
    expect(parseCli(['--cost', 'redisUsPerHotAttempt=30']).costOverrides).toEqual({ redisUsPerHotAttempt: 30 });
  });

  it('refuses bad flags with one clear line', () => {
    expect(() => parseCli(['--attempts-per-sec'])).toThrow('--attempts-per-sec needs a number (got nothing)');
    expect(() => parseCli(['--subscribers', 'many'])).toThrow('--subscribers needs a number (got "many")');
    expect(() => parseCli(['--frobnicate', '1'])).toThrow(/unknown argument "--frobnicate"/);
    expect(() => parseCli(['--cost', 'nope=1'])).toThrow(/unknown unit cost "nope"/);
    expect(() => parseCli(['--cost', 'gatewayUsPerFrame'])).toThrow(/name=value/);
  });

  it('defaults orders to what a sale can sell in its first second', () => {
    expect(defaultOrders(load({ attemptsPerSec: 16_667, hotSkuUnits: 1000 }))).toBe(1000);
    expect(defaultOrders(load({ attemptsPerSec: 500, hotSkuUnits: 1000 }))).toBe(500);
    expect(defaultOrders(load({ attemptsPerSec: 0 }))).toBe(0);
  });
});
