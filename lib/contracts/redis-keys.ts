/**
 * The whole Redis key layout of the platform, in one place: every process (stream processor,
 * gateway, purchase gate, waiting room, epoch) builds its keys here and nowhere else. Pure: no
 * Redis client, only strings. The Lua scripts receive these keys as KEYS; the strings are a
 * contract between processes and releases (a changed string is a migration), so a unit test
 * pins them.
 *
 * Keys (prefix from REDIS_PREFIX, default `inv`). Every key a Lua script touches shares one Redis
 * Cluster slot, so each script stays atomic on a cluster (docs/purchase-path.md, "Redis Cluster"):
 * a SKU's keys carry the hash tag {<sku>}; purchase-scoped keys (hold, idempotency record, the
 * reaper's index, the epoch marker) carry a *slot tag* {<tag of slot s>}, a short string chosen to
 * hash to slot s, and are written to the slot of the purchase's first SKU. On one Redis server
 * (no cluster) there is one slot: every slot-tagged key uses the tag of slot 0.
 *   views (written by stream-processors, read by the gateway and the gate):
 *     <p>:{<sku>}:rows              hash locationId -> encoded row (contracts/stock-view.ts)
 *     <p>:{<sku>}                   hash SKU summary (what HTTP reads serve, what the gate sells from)
 *     <p>:feed                      stream of applied SKU changes for gateways (contracts/feed.ts)
 *   stock alerts (stream-processors/lua/alert-step-1.lua, docs/stream-processors.md "Stock alerts"):
 *     <p>:{<sku>}:alerts            hash: per channel the alert state, alerts not yet published, their mark
 *     <p>:alerts                    stream of alerts for gateways (contracts/feed.ts)
 *   purchase gate (docs/purchase-path.md):
 *     <p>:{<sku>}:gate              hash of the gate's terms (inflight, unreflected)
 *     <p>:{<sku>}:gate:pending      write-backs the view has not reached yet (popped by apply-rows)
 *     <p>:{<sku>}:gate:holds        holds of the SKU
 *     <p>:{<sku>}:gate:cust         units bought per customer (the per-customer limit)
 *     <p>:{<slot tag>}:gate:unsettled   zset of the slot's holds by settle deadline (the reaper's work list)
 *     <p>:{<slot tag>}:hold:<holdId>    one hold record
 *     <p>:{<slot tag>}:idem:<scoped key> one idempotency record
 *     <p>:rl:c:<customerId>, <p>:rl:a:<address>   rate-limit buckets
 *   waiting room:
 *     <p>:{<sku>}:wr, :wr:queue, :wr:keys, :wr:out, :wr:fate:<ticket>
 *     <p>:wr:fates                  pub/sub channel of decided fates
 *     <p>:wr:secret                 the secret ticket references are signed with
 *   epoch (stream-processors/epoch.ts):
 *     <p>:{<slot tag>}:epoch        one marker per slot: the slot was rebuilt from Postgres
 *     <p>:{<slot tag>}:epoch:pending   the rebuild in progress, per slot (a slot that loses its data loses it)
 *     <p>:epoch:lock                one rebuild at a time
 *   sales channels (stream-processors/channel-figures.ts):
 *     <p>:channels:cfg              the configuration version every SKU's channel figures were recomputed for
 */
import calculateSlot from 'cluster-key-slot';

/** Redis Cluster's slot count. */
export const CLUSTER_SLOTS = 16384;

let slotTagTable: string[] | undefined;

/**
 * The slot tag of `slot`: the shortest `s<n>` (smallest n) whose CRC16 lands on it, so
 * `<p>:{<tag>}:…` lives in that slot. Computed once (about 100k hashes) and cached.
 */
export function slotTag(slot: number): string {
  if (!slotTagTable) {
    const table: string[] = new Array(CLUSTER_SLOTS);
    let found = 0;
    for (let n = 0; found < CLUSTER_SLOTS; n++) {
      const tag = `s${n}`;
      const s = calculateSlot(tag);
      if (table[s] === undefined) {
        table[s] = tag;
        found++;
      }
    }
    slotTagTable = table;
  }
  return slotTagTable[slot]!;
}

export interface RedisKeys {
  readonly prefix: string;

  // --- stock views
  rows(sku: string): string;
  summary(sku: string): string;
  feed: string;
  /** SCAN pattern matching every rows key. */
  rowsPattern: string;
  skuFromRowsKey(key: string): string | undefined;

  // --- stock alerts
  /** The SKU's alert state per channel, with the alerts decided but not yet published. */
  alerts(sku: string): string;
  /** The stream of alerts gateways fan out. */
  alertStream: string;

  // --- purchase gate
  /** The purchase gate's terms for the SKU (purchase/lua/gate-reserve.lua). */
  gate(sku: string): string;
  /** Write-backs of the SKU the view has not reached yet (popped by the apply script). */
  gatePending(sku: string): string;
  gateHolds(sku: string): string;
  gateCustomers(sku: string): string;
  /** Marker: this order's release of the SKU's customer-limit units was carried out (gate-uncount.lua). */
  limitReleased(sku: string, orderId: string): string;
  /** SCAN pattern matching every gate-terms key. */
  gatePattern: string;
  skuFromGateKey(key: string): string | undefined;
  /** Slots the layout spreads slot-tagged keys over: 16384 on a cluster, 1 on one server. */
  readonly slots: number;
  /** The slot of the SKU's keys (0 on one server). */
  slotOf(sku: string): number;
  /** The reaper's index of the holds written to `slot`. */
  unsettled(slot: number): string;
  hold(holdId: string, slot: number): string;
  /** The record of an Idempotency-Key already scoped by its customer, in `slot`. */
  idempotency(scopedKey: string, slot: number): string;
  rateCustomer(customerId: string): string;
  rateAddress(address: string): string;

  // --- waiting room
  waitingRoom(sku: string): string;
  waitingQueue(sku: string): string;
  waitingKeys(sku: string): string;
  waitingOut(sku: string): string;
  fate(sku: string, ticket: number): string;
  fatesChannel: string;
  ticketSecret: string;

  // --- epoch
  /** The marker that `slot` was rebuilt from Postgres (gone with the slot's data). */
  epoch(slot: number): string;
  /** The rebuild in progress, per slot: the marker is set only while this still holds its token. */
  epochPending(slot: number): string;
  epochLock: string;

  // --- sales channels
  /** The configuration version every SKU's channel figures were last recomputed for (stream-processors/channel-figures.ts). */
  channelsVersion: string;
}

/**
 * A SKU that starts with `}` would make an empty hash tag `{}` (Redis then hashes the whole key,
 * and the SKU's keys would land in different slots): such a SKU is tagged with a \x01 in front
 * (SKUs cannot hold control characters, so no other SKU maps to the same key).
 */
const ESCAPE = '\x01';
const tagOf = (sku: string) => (sku.startsWith('}') ? ESCAPE + sku : sku);
const skuOfTag = (tag: string) => (tag.startsWith(ESCAPE) ? tag.slice(1) : tag);

function skuTagged(prefix: string, suffix: string): (key: string) => string | undefined {
  const head = `${prefix}:{`;
  return (key) => (key.startsWith(head) && key.endsWith(suffix) ? skuOfTag(key.slice(head.length, -suffix.length)) : undefined);
}

/** `cluster`: spread slot-tagged keys over Redis Cluster's 16384 slots (else all in slot 0). */
export function redisKeys(prefix: string, options: { cluster?: boolean } = {}): RedisKeys {
  const tag = (sku: string) => `${prefix}:{${tagOf(sku)}}`;
  const cluster = options.cluster ?? false;
  const inSlot = (slot: number) => `${prefix}:{${slotTag(cluster ? slot : 0)}}`;
  return {
    prefix,
    rows: (sku) => `${tag(sku)}:rows`,
    summary: (sku) => tag(sku),
    feed: `${prefix}:feed`,
    rowsPattern: `${prefix}:{*}:rows`,
    skuFromRowsKey: skuTagged(prefix, '}:rows'),

    alerts: (sku) => `${tag(sku)}:alerts`,
    alertStream: `${prefix}:alerts`,

    gate: (sku) => `${tag(sku)}:gate`,
    gatePending: (sku) => `${tag(sku)}:gate:pending`,
    gateHolds: (sku) => `${tag(sku)}:gate:holds`,
    gateCustomers: (sku) => `${tag(sku)}:gate:cust`,
    limitReleased: (sku, orderId) => `${tag(sku)}:gate:released:${orderId}`,
    gatePattern: `${prefix}:{*}:gate`,
    skuFromGateKey: skuTagged(prefix, '}:gate'),
    slots: cluster ? CLUSTER_SLOTS : 1,
    slotOf: (sku) => (cluster ? calculateSlot(tag(sku)) : 0),
    unsettled: (slot) => `${inSlot(slot)}:gate:unsettled`,
    hold: (holdId, slot) => `${inSlot(slot)}:hold:${holdId}`,
    idempotency: (scopedKey, slot) => `${inSlot(slot)}:idem:${scopedKey}`,
    rateCustomer: (customerId) => `${prefix}:rl:c:${customerId}`,
    rateAddress: (address) => `${prefix}:rl:a:${address}`,

    waitingRoom: (sku) => `${tag(sku)}:wr`,
    waitingQueue: (sku) => `${tag(sku)}:wr:queue`,
    waitingKeys: (sku) => `${tag(sku)}:wr:keys`,
    waitingOut: (sku) => `${tag(sku)}:wr:out`,
    fate: (sku, ticket) => `${tag(sku)}:wr:fate:${ticket}`,
    fatesChannel: `${prefix}:wr:fates`,
    ticketSecret: `${prefix}:wr:secret`,

    epoch: (slot) => `${inSlot(slot)}:epoch`,
    epochPending: (slot) => `${inSlot(slot)}:epoch:pending`,
    epochLock: `${prefix}:epoch:lock`,

    channelsVersion: `${prefix}:channels:cfg`,
  };
}
