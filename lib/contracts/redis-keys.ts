/**
 * The whole Redis key layout of the platform, in one place: every process (stream processor,
 * gateway, purchase gate, waiting room, epoch) builds its keys here and nowhere else. Pure: no
 * Redis client, only strings. The Lua scripts receive these keys as KEYS; the strings are a
 * contract between processes and releases (a changed string is a migration), so a unit test
 * pins them.
 *
 * Keys (prefix from REDIS_PREFIX, default `inv`). A SKU's keys carry the hash tag {<sku>}, so
 * they share one Redis Cluster slot and a script over them stays atomic there too.
 *   views (written by stream-processors, read by the gateway and the gate):
 *     <p>:{<sku>}:rows              hash locationId -> encoded row (contracts/stock-view.ts)
 *     <p>:{<sku>}                   hash SKU summary (what HTTP reads serve, what the gate sells from)
 *     <p>:feed                      stream of applied SKU changes for gateways (contracts/feed.ts)
 *   purchase gate (docs/purchase-path.md):
 *     <p>:{<sku>}:gate              hash of the gate's terms (inflight, unreflected)
 *     <p>:{<sku>}:gate:pending      write-backs the view has not reached yet (popped by apply-rows)
 *     <p>:{<sku>}:gate:holds        holds of the SKU
 *     <p>:{<sku>}:gate:cust         units bought per customer (the per-customer limit)
 *     <p>:gate:unsettled            zset of holds by settle deadline (the reaper's work list)
 *     <p>:hold:<holdId>             one hold record
 *     <p>:idem:<scoped key>         one idempotency record
 *     <p>:rl:c:<customerId>, <p>:rl:a:<address>   rate-limit buckets
 *   waiting room:
 *     <p>:{<sku>}:wr, :wr:queue, :wr:keys, :wr:out, :wr:fate:<ticket>
 *     <p>:wr:fates                  pub/sub channel of decided fates
 *     <p>:wr:secret                 the secret ticket references are signed with
 *   epoch (stream-processors/epoch.ts):
 *     <p>:epoch, <p>:epoch:lock
 */

export interface RedisKeys {
  readonly prefix: string;

  // --- stock views
  rows(sku: string): string;
  summary(sku: string): string;
  feed: string;
  /** SCAN pattern matching every rows key. */
  rowsPattern: string;
  skuFromRowsKey(key: string): string | undefined;

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
  unsettled: string;
  hold(holdId: string): string;
  /** The record of an Idempotency-Key already scoped by its customer. */
  idempotency(scopedKey: string): string;
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
  epoch: string;
  epochLock: string;
}

function skuTagged(prefix: string, suffix: string): (key: string) => string | undefined {
  const head = `${prefix}:{`;
  return (key) => (key.startsWith(head) && key.endsWith(suffix) ? key.slice(head.length, -suffix.length) : undefined);
}

export function redisKeys(prefix: string): RedisKeys {
  const tag = (sku: string) => `${prefix}:{${sku}}`;
  return {
    prefix,
    rows: (sku) => `${tag(sku)}:rows`,
    summary: (sku) => tag(sku),
    feed: `${prefix}:feed`,
    rowsPattern: `${prefix}:{*}:rows`,
    skuFromRowsKey: skuTagged(prefix, '}:rows'),

    gate: (sku) => `${tag(sku)}:gate`,
    gatePending: (sku) => `${tag(sku)}:gate:pending`,
    gateHolds: (sku) => `${tag(sku)}:gate:holds`,
    gateCustomers: (sku) => `${tag(sku)}:gate:cust`,
    limitReleased: (sku, orderId) => `${tag(sku)}:gate:released:${orderId}`,
    gatePattern: `${prefix}:{*}:gate`,
    skuFromGateKey: skuTagged(prefix, '}:gate'),
    unsettled: `${prefix}:gate:unsettled`,
    hold: (holdId) => `${prefix}:hold:${holdId}`,
    idempotency: (scopedKey) => `${prefix}:idem:${scopedKey}`,
    rateCustomer: (customerId) => `${prefix}:rl:c:${customerId}`,
    rateAddress: (address) => `${prefix}:rl:a:${address}`,

    waitingRoom: (sku) => `${tag(sku)}:wr`,
    waitingQueue: (sku) => `${tag(sku)}:wr:queue`,
    waitingKeys: (sku) => `${tag(sku)}:wr:keys`,
    waitingOut: (sku) => `${tag(sku)}:wr:out`,
    fate: (sku, ticket) => `${tag(sku)}:wr:fate:${ticket}`,
    fatesChannel: `${prefix}:wr:fates`,
    ticketSecret: `${prefix}:wr:secret`,

    epoch: `${prefix}:epoch`,
    epochLock: `${prefix}:epoch:lock`,
  };
}
