/**
 * The capacity model: from a target load and the per-unit costs measured on one machine
 * (tools/capacity/unit-costs.json, written by tools/capacity/unit-costs.ts) to how many gateways,
 * Redis masters, Kafka partitions and processors the load needs, how busy every resource that
 * cannot be scaled out would be, and which of them breaks first. Pure: no I/O (docs/capacity.md
 * has the formulas and what each cost means).
 *
 * Every cost is CPU time of one core in microseconds per unit of work. A Node process (gateway,
 * processor) uses one core; a Redis master executes commands on one thread; a Debezium Postgres
 * connector reads its replication slot in one task. Sizing divides the demand by
 * `targetUtilisation` of a core, so there is headroom for bursts, GC and the tail.
 */

export interface UnitCosts {
  /** Gateway CPU per refused purchase attempt (HTTP, credential, validation, one gate call, the 409). */
  gatewayUsPerAttempt: number;
  /** Gateway CPU per refused attempt on a hot SKU (waiting room: the ticket script's sold-out path). */
  gatewayUsPerHotAttempt: number;
  /** Gateway CPU per accepted purchase (gate, group-committed write-back, the 201). */
  gatewayUsPerAcceptedPurchase: number;
  /** Cores a gateway uses with no purchases and a quiet feed (its read loop, ticks, timers), per gateway. */
  gatewayFixedCores: number;
  /** Gateway CPU per feed entry read (every gateway reads the whole feed). */
  gatewayUsPerFeedEntry: number;
  /** Gateway CPU per WebSocket frame sent (the socket write). */
  gatewayUsPerFrame: number;
  /** Gateway CPU per item (SKU state) delivered to one connection. */
  gatewayUsPerItem: number;
  /** Gateway memory per idle connection, and per SKU it subscribes (docs/benchmarks.md, ws-idle-memory). */
  gatewayBytesPerConnection: number;
  gatewayBytesPerSubscribedSku: number;
  /** Redis server CPU per refused attempt (its gate call, including network I/O). */
  redisUsPerAttempt: number;
  /** Redis server CPU per refused attempt on a hot SKU (the waiting-room ticket script). */
  redisUsPerHotAttempt: number;
  /** Redis server CPU per accepted purchase (reserve, write-back bookkeeping, settle). */
  redisUsPerAcceptedPurchase: number;
  /** Redis server CPU per folded change (the processor's apply script, the feed XADD). */
  redisUsPerApply: number;
  /** Redis server CPU per feed entry per gateway reading it (XREAD COUNT 2000 BLOCK 500). */
  redisUsPerFeedEntryRead: number;
  /** Stock processor CPU per folded change (decode, apply, stock.deltas / stock.levels produce). */
  processorUsPerChange: number;
  /** Kafka Connect (Debezium) CPU per captured stock change, above its idle poll loop. */
  connectUsPerChange: number;
  /** Kafka Connect CPU per written order (its stock change and its outbox row). */
  connectUsPerOrder: number;
  /** Kafka broker CPU per change (the CDC event and the processor's deltas and levels). */
  kafkaUsPerChange: number;
  /** Postgres CPU per changed stock row inside a larger transaction (WAL, logical decoding for both slots). */
  postgresUsPerChange: number;
  /** Postgres CPU per transaction on top of its rows (commit, fsync, round trip): single-row cost minus the row's. */
  postgresUsPerTransaction: number;
  /** Postgres CPU per written order (group-committed write-back: reservation, order, outbox row). */
  postgresUsPerOrder: number;
}

export interface Load {
  /** Purchase attempts per second, all SKUs. */
  attemptsPerSec: number;
  /** Share (0..1) of the attempts that go to the single hottest SKU. */
  hotSkuShare: number;
  /** Whether the hottest SKU is in the waiting room (PURCHASE_HOT_SKUS). */
  hotSkuWaitingRoom: boolean;
  /** Units on hand of the hottest SKU (for the waiting-room figures). */
  hotSkuUnits: number;
  /** PURCHASE_WAITING_ROOM_FACTOR: tickets admitted to the gate per available unit. */
  waitingRoomFactor: number;
  /** Accepted purchases per second written to Postgres (each also changes stock). */
  ordersPerSec: number;
  /** WebSocket subscribers (connections). */
  subscribers: number;
  /** SKUs each subscriber watches. */
  skusPerSubscriber: number;
  /** SKUs the changes are spread over (uniformly). */
  catalogSkus: number;
  /** Committed stock changes per second other than those orders cause. */
  changesPerSec: number;
  /** Rows changed per transaction by the writers of those changes (1: one UPDATE per commit). */
  changesPerTransaction: number;
  /** GATEWAY_TICK_MS: a connection gets at most one frame per tick. */
  tickMs: number;
  /** Share of a core a sized process may use (0..1]. */
  targetUtilisation: number;
  /** Memory for connections per gateway process, bytes. */
  gatewayMemoryBytes: number;
  /** Connections one gateway process may hold at most (file descriptors, kernel buffers). */
  maxConnectionsPerGateway: number;
  /** Cores of the Postgres primary. */
  postgresCores: number;
}

export const DEFAULT_LOAD: Load = {
  attemptsPerSec: 0,
  hotSkuShare: 1,
  hotSkuWaitingRoom: true,
  hotSkuUnits: 1000,
  waitingRoomFactor: 1.5,
  ordersPerSec: 0,
  subscribers: 0,
  skusPerSubscriber: 20,
  catalogSkus: 100_000,
  changesPerSec: 0,
  changesPerTransaction: 1,
  tickMs: 25,
  targetUtilisation: 0.7,
  gatewayMemoryBytes: 2 * 2 ** 30,
  maxConnectionsPerGateway: 50_000,
  postgresCores: 8,
};

/** One resource that cannot be scaled out by adding processes: its share of its single core (or of Postgres' cores). */
export interface Limit {
  resource: string;
  /** Demand / capacity; above 1 it cannot keep up. */
  utilisation: number;
  /** The load at which it reaches one core (or all of Postgres' cores), in its own unit. */
  ceiling: string;
}

export interface Needs {
  /** Derived rates. */
  rates: {
    changesPerSec: number;
    hotSkuAttemptsPerSec: number;
    framesPerSec: number;
    itemsPerSec: number;
    framesPerSubscriberPerSec: number;
    itemsPerSubscriberPerSec: number;
  };
  gateways: { count: number; byCpu: number; byConnections: number; connectionsPerGateway: number; coresDemand: number; feedShareOfCore: number };
  redis: { masters: number; coresDemand: number };
  processors: { count: number; coresDemand: number };
  kafka: { partitions: number; brokerCores: number };
  connect: { stockTaskCores: number; outboxTaskCores: number };
  postgres: { coresDemand: number };
  hotSku: {
    attemptsPerSec: number;
    /** Attempts/s on one SKU that one Redis core can answer (no headroom). */
    ceilingAttemptsPerSec: number;
    utilisation: number;
    /** Waiting room: tickets that reach the gate, and how long the sale takes to hand them out. */
    waitingRoom: { admitted: number; secondsToAdmitAll: number | null } | null;
  };
  /** Single points, busiest first. */
  limits: Limit[];
  /** The busiest single point, or the scaled resource that runs out first when none is above the target. */
  firstBottleneck: Limit;
}

/** A stable, readable error when a load or cost is out of range. */
export class ModelInputError extends Error {}

function check(load: Load, costs: UnitCosts): void {
  const nonNeg: Array<[string, number]> = [
    ['attempts-per-sec', load.attemptsPerSec],
    ['orders-per-sec', load.ordersPerSec],
    ['subscribers', load.subscribers],
    ['changes-per-sec', load.changesPerSec],
    ['hot-sku-units', load.hotSkuUnits],
  ];
  for (const [name, v] of nonNeg) if (!Number.isFinite(v) || v < 0) throw new ModelInputError(`--${name} must be a number >= 0 (got ${v})`);
  const pos: Array<[string, number]> = [
    ['skus-per-subscriber', load.skusPerSubscriber],
    ['catalog-skus', load.catalogSkus],
    ['changes-per-transaction', load.changesPerTransaction],
    ['tick-ms', load.tickMs],
    ['gateway-memory-gib', load.gatewayMemoryBytes],
    ['max-connections-per-gateway', load.maxConnectionsPerGateway],
    ['postgres-cores', load.postgresCores],
    ['waiting-room-factor', load.waitingRoomFactor],
  ];
  for (const [name, v] of pos) if (!Number.isFinite(v) || v <= 0) throw new ModelInputError(`--${name} must be a number > 0 (got ${v})`);
  if (!(load.hotSkuShare >= 0 && load.hotSkuShare <= 1)) throw new ModelInputError(`--hot-sku-share must be between 0 and 1 (got ${load.hotSkuShare})`);
  if (!(load.targetUtilisation > 0 && load.targetUtilisation <= 1)) throw new ModelInputError(`--target-utilisation must be in (0, 1] (got ${load.targetUtilisation})`);
  if (load.ordersPerSec > load.attemptsPerSec) throw new ModelInputError(`--orders-per-sec (${load.ordersPerSec}) cannot exceed --attempts-per-sec (${load.attemptsPerSec})`);
  for (const [k, v] of Object.entries(costs)) if (!Number.isFinite(v) || v < 0) throw new ModelInputError(`unit cost ${k} must be a number >= 0 (got ${String(v)})`);
}

/**
 * Frames and items per subscriber per second when `changesPerSec` are spread uniformly (Poisson)
 * over `catalogSkus` and a subscriber watches `k` of them: the gateway sends a connection at most
 * one frame per tick, carrying the newest state of each of its SKUs that changed in that tick.
 */
export function fanoutPerSubscriber(changesPerSec: number, catalogSkus: number, k: number, tickMs: number): { frames: number; items: number } {
  const kk = Math.min(k, catalogSkus);
  const t = tickMs / 1000;
  const perSku = changesPerSec / catalogSkus; // changes/s of one SKU
  return {
    frames: (1 / t) * (1 - Math.exp(-kk * perSku * t)),
    items: kk * (1 / t) * (1 - Math.exp(-perSku * t)),
  };
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

export function model(load: Load, costs: UnitCosts): Needs {
  check(load, costs);
  const core = 1e6; // µs of CPU one core has per second
  const budget = core * load.targetUtilisation;
  // Every order changes its SKU's stock row (the write-back groups several orders of one SKU into
  // one UPDATE; counting one change per order is the conservative side).
  const changes = load.changesPerSec + load.ordersPerSec;

  // --- purchases
  const refused = load.attemptsPerSec - load.ordersPerSec;
  const hotAttempts = load.attemptsPerSec * load.hotSkuShare;
  const hotRefused = Math.min(refused, hotAttempts);
  const hotViaRoom = load.hotSkuWaitingRoom ? hotRefused : 0;
  const plainRefused = refused - hotViaRoom;
  const gatewayPurchaseUs = plainRefused * costs.gatewayUsPerAttempt + hotViaRoom * costs.gatewayUsPerHotAttempt + load.ordersPerSec * costs.gatewayUsPerAcceptedPurchase;
  const redisPurchaseUs = plainRefused * costs.redisUsPerAttempt + hotViaRoom * costs.redisUsPerHotAttempt + load.ordersPerSec * costs.redisUsPerAcceptedPurchase;

  // --- fan-out
  const per = fanoutPerSubscriber(changes, load.catalogSkus, load.skusPerSubscriber, load.tickMs);
  const frames = load.subscribers * per.frames;
  const items = load.subscribers * per.items;
  const gatewayFanoutUs = frames * costs.gatewayUsPerFrame + items * costs.gatewayUsPerItem;
  // Every gateway reads every feed entry: a fixed cost per gateway, not shared.
  const feedUs = costs.gatewayFixedCores * core + changes * costs.gatewayUsPerFeedEntry;
  const feedShare = feedUs / core;

  // --- gateways: enough CPU for the shared work once each has paid for the feed, and enough room for the connections
  const perConnBytes = costs.gatewayBytesPerConnection + Math.min(load.skusPerSubscriber, load.catalogSkus) * costs.gatewayBytesPerSubscribedSku;
  const connsPerGateway = Math.max(1, Math.floor(Math.min(load.maxConnectionsPerGateway, load.gatewayMemoryBytes / Math.max(1, perConnBytes))));
  const sharedUs = gatewayPurchaseUs + gatewayFanoutUs;
  const room = budget - feedUs;
  const byCpu = sharedUs === 0 ? 0 : room > 0 ? Math.ceil(sharedUs / room) : Number.POSITIVE_INFINITY;
  const byConnections = Math.ceil(load.subscribers / connsPerGateway);
  const anyGatewayWork = sharedUs > 0 || load.subscribers > 0;
  const gateways = anyGatewayWork ? Math.max(1, byCpu, byConnections) : 0;
  const gatewayCores = sharedUs / core + (Number.isFinite(gateways) ? gateways : 0) * feedShare;

  // --- Redis: all masters together; the hot SKU's slot sits on one of them
  const redisUs = redisPurchaseUs + changes * costs.redisUsPerApply + changes * (Number.isFinite(gateways) ? gateways : 0) * costs.redisUsPerFeedEntryRead;
  const hotUsPerAttempt = load.hotSkuWaitingRoom ? costs.redisUsPerHotAttempt : costs.redisUsPerAttempt;
  const hotRedisUs = hotAttempts * hotUsPerAttempt;
  const masters = redisUs === 0 ? 0 : Math.max(1, Math.ceil(redisUs / budget));

  // --- processors and partitions
  const processorUs = changes * costs.processorUsPerChange;
  const processors = changes === 0 ? 0 : Math.max(1, Math.ceil(processorUs / budget));
  // Partitions fix where a SKU's changes go; adding them later moves SKUs between partitions (and
  // processors), so size them for twice the processors needed now.
  const partitions = changes === 0 ? 0 : Math.max(6, 2 * processors);

  // --- capture and storage (single points)
  const stockTaskUs = load.changesPerSec * costs.connectUsPerChange;
  const outboxTaskUs = load.ordersPerSec * costs.connectUsPerOrder;
  const perChangePg = costs.postgresUsPerChange + costs.postgresUsPerTransaction / load.changesPerTransaction;
  const postgresUs = load.changesPerSec * perChangePg + load.ordersPerSec * costs.postgresUsPerOrder;
  const kafkaUs = changes * costs.kafkaUsPerChange;

  const hotCeiling = hotUsPerAttempt > 0 ? core / hotUsPerAttempt : Number.POSITIVE_INFINITY;
  const limits: Limit[] = [
    { resource: 'Redis: the hot SKU\'s slot (one master thread)', utilisation: hotRedisUs / core, ceiling: `${fmt(hotCeiling)} attempts/s on one SKU` },
    {
      // The feed is one stream: one key, one slot, one master, read by every gateway.
      resource: 'Redis: the feed stream\'s slot (read by every gateway)',
      // With no finite gateway count (one cannot read the feed) count the ones the connections need.
      utilisation: (changes * (Number.isFinite(gateways) ? gateways : Math.max(1, byConnections)) * costs.redisUsPerFeedEntryRead) / core,
      ceiling:
        costs.redisUsPerFeedEntryRead > 0 && changes > 0 ? `${fmt(core / (changes * costs.redisUsPerFeedEntryRead))} gateways at ${fmt(changes)} entries/s` : 'unbounded',
    },
    {
      resource: 'Debezium stock connector (one task reads the slot)',
      utilisation: stockTaskUs / core,
      ceiling: costs.connectUsPerChange > 0 ? `${fmt(core / costs.connectUsPerChange)} changes/s` : 'unbounded',
    },
    {
      resource: 'Debezium outbox connector (one task)',
      utilisation: outboxTaskUs / core,
      ceiling: costs.connectUsPerOrder > 0 ? `${fmt(core / costs.connectUsPerOrder)} orders/s` : 'unbounded',
    },
    {
      resource: 'a gateway reading the whole feed (+ its fixed cost)',
      utilisation: feedShare,
      ceiling: costs.gatewayUsPerFeedEntry > 0 ? `${fmt(Math.max(0, core * (1 - costs.gatewayFixedCores)) / costs.gatewayUsPerFeedEntry)} feed entries/s` : 'unbounded',
    },
    {
      resource: 'a processor: one SKU\'s changes (one partition)',
      // The busiest SKU under a uniform spread; a hot SKU's orders all land on one partition.
      utilisation: ((load.changesPerSec / load.catalogSkus + load.ordersPerSec * load.hotSkuShare) * costs.processorUsPerChange) / core,
      ceiling: costs.processorUsPerChange > 0 ? `${fmt(core / costs.processorUsPerChange)} changes/s of one SKU` : 'unbounded',
    },
    {
      resource: `Postgres primary (${load.postgresCores} cores)`,
      utilisation: postgresUs / (core * load.postgresCores),
      ceiling: perChangePg > 0 ? `${fmt((core * load.postgresCores) / perChangePg)} changes/s at ${load.changesPerTransaction} per transaction` : 'unbounded',
    },
  ].sort((a, b) => b.utilisation - a.utilisation);

  return {
    rates: {
      changesPerSec: changes,
      hotSkuAttemptsPerSec: hotAttempts,
      framesPerSec: frames,
      itemsPerSec: items,
      framesPerSubscriberPerSec: per.frames,
      itemsPerSubscriberPerSec: per.items,
    },
    gateways: { count: gateways, byCpu, byConnections, connectionsPerGateway: connsPerGateway, coresDemand: gatewayCores, feedShareOfCore: feedShare },
    redis: { masters, coresDemand: redisUs / core },
    processors: { count: processors, coresDemand: processorUs / core },
    kafka: { partitions, brokerCores: kafkaUs / core },
    connect: { stockTaskCores: stockTaskUs / core, outboxTaskCores: outboxTaskUs / core },
    postgres: { coresDemand: postgresUs / core },
    hotSku: {
      attemptsPerSec: hotAttempts,
      ceilingAttemptsPerSec: hotCeiling,
      utilisation: hotRedisUs / core,
      waitingRoom:
        load.hotSkuWaitingRoom && hotAttempts > 0
          ? { admitted: Math.ceil(load.hotSkuUnits * load.waitingRoomFactor), secondsToAdmitAll: Math.ceil(load.hotSkuUnits * load.waitingRoomFactor) / hotAttempts }
          : null,
    },
    limits,
    firstBottleneck: limits[0]!,
  };
}

/** Solves A x = b by least squares (normal equations, Gaussian elimination with partial pivoting). */
export function solveLinear(a: number[][], b: number[]): number[] {
  const n = a[0]?.length ?? 0;
  if (n === 0 || a.length < n || a.length !== b.length) throw new Error(`solveLinear: need at least ${n} equations of ${n} unknowns (got ${a.length})`);
  // Normal equations: (AᵀA) x = Aᵀb (exact solve when A is square).
  const m = Array.from({ length: n }, (_, i) => [...Array.from({ length: n }, (_, j) => a.reduce((s, row) => s + row[i]! * row[j]!, 0)), a.reduce((s, row, r) => s + row[i]! * b[r]!, 0)]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    if (Math.abs(m[pivot]![col]!) < 1e-12) throw new Error('solveLinear: the equations do not determine the unknowns (singular)');
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}
