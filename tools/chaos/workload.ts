/**
 * The mixed workload of a chaos run, each part a loop that keeps going through faults:
 *   buyers       a flash sale of one hot SKU over both gateways; on an error or 5xx a buyer
 *                retries with the *same* Idempotency-Key (on the other gateway), as a careful
 *                client does; some cancel an order again;
 *   wms          stock adjustments to their own SKUs, as Avro on `stock.adjustments` and over
 *                `POST /v1/adjustments`, ~20% sent twice; resent until acknowledged;
 *   erp          plain SQL transactions setting on_hand, as an ERP would;
 *   probe        a SQL update of a probe SKU every 250 ms, its commit time recorded;
 *   subscribers  storefront WebSocket clients (gateway/client/sdk.ts: reconnect + resume) on both
 *                gateways, recording when each probe value arrives;
 *   events       a consumer of `orders.events` recording every event of the run.
 * Everything a check needs later is recorded here; nothing is asserted here.
 */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type pg from 'pg';
import WebSocket from 'ws';
import type { StockCodecs } from '../../lib/avro-registry.ts';
import { TOPICS } from '../../lib/topics.ts';
import { StockClient, type StockItem, type WebSocketConstructor } from '../../gateway/client/sdk.ts';
import type { StockAdjustment } from '../../schemas/generated/avro-types.ts';

export interface RunIds {
  run: string;
  hot: string;
  probe: string;
  adj: string[];
  erp: string[];
  locations: [string, string];
}

export function runIds(run: string, opts: { adjSkus: number; erpSkus: number }): RunIds {
  const sku = (s: string) => `${run}-${s}`;
  return {
    run,
    hot: sku('HOT'),
    probe: sku('PROBE'),
    adj: Array.from({ length: opts.adjSkus }, (_, i) => sku(`ADJ${i + 1}`)),
    erp: Array.from({ length: opts.erpSkus }, (_, i) => sku(`ERP${i + 1}`)),
    locations: [`${run}-L1`, `${run}-L2`],
  };
}

export function allSkus(ids: RunIds): string[] {
  return [ids.hot, ids.probe, ...ids.adj, ...ids.erp];
}

export const ADJ_START_ON_HAND = 100_000;
const PROBE_BASE = 1000;

/** Catalog and stock rows of the run. The hot SKU's units sit at the two locations. */
export async function setupCatalog(pool: pg.Pool, ids: RunIds, hotUnits: number): Promise<void> {
  const skus = allSkus(ids);
  await pool.query(`INSERT INTO locations (location_id, name) SELECT l, l FROM unnest($1::text[]) AS l ON CONFLICT DO NOTHING`, [ids.locations]);
  await pool.query(`INSERT INTO products (sku, name) SELECT s, s FROM unnest($1::text[]) AS s ON CONFLICT DO NOTHING`, [skus]);
  const rows: Array<[string, string, number]> = [];
  rows.push([ids.hot, ids.locations[0], Math.ceil(hotUnits / 2)], [ids.hot, ids.locations[1], Math.floor(hotUnits / 2)]);
  rows.push([ids.probe, ids.locations[0], PROBE_BASE]);
  for (const s of ids.adj) for (const l of ids.locations) rows.push([s, l, ADJ_START_ON_HAND]);
  for (const s of ids.erp) for (const l of ids.locations) rows.push([s, l, 100]);
  await pool.query(
    `INSERT INTO stock_levels (sku, location_id, on_hand) SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) ON CONFLICT DO NOTHING`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** One JSON request; a network error or timeout is status 0. */
export function request(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const url = new URL(path, base);
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        timeout: 10_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
        res.on('error', () => resolve({ status: 0, headers: {}, body: {} }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, headers: {}, body: {} }));
    req.end(text);
  });
}

function retryAfterMs(r: Reply, fallback: number): number {
  const s = Number(r.headers['retry-after']);
  return Number.isFinite(s) && s > 0 ? Math.min(5000, s * 1000) : fallback;
}

// ---------------------------------------------------------------------------------------------
// buyers

export interface BuyerRecord {
  /** Idempotency-Key → order id of every 201 (a second, different id for a key is a duplicate). */
  acked: Map<string, string>;
  conflictingAcks: Array<{ key: string; first: string; second: string }>;
  cancelled: Set<string>;
  soldOutAt: number[];
  statuses: Map<string, number>;
  attempts: number;
  retries: number;
}

export function newBuyerRecord(): BuyerRecord {
  return { acked: new Map(), conflictingAcks: [], cancelled: new Set(), soldOutAt: [], statuses: new Map(), attempts: 0, retries: 0 };
}

export async function runBuyers(o: {
  ids: RunIds;
  gateways: string[];
  buyers: number;
  /** Purchases per second over all buyers. */
  ratePerSec: number;
  cancelShare: number;
  random: () => number;
  until: () => boolean;
  record: BuyerRecord;
  /** Credential headers for a customer (a JWT whose `sub` is the customer, when the gateway verifies customers). */
  /** The headers that authenticate a buyer as this customer. */
  authFor: (customerId: string) => Promise<Record<string, string>>;
}): Promise<void> {
  const count = (k: string) => o.record.statuses.set(k, (o.record.statuses.get(k) ?? 0) + 1);
  const buyer = async (b: number) => {
    const customerId = `${o.ids.run}-c${b}`;
    const as = await o.authFor(customerId);
    const pause = (o.buyers / Math.max(0.1, o.ratePerSec)) * 1000;
    await sleep(o.random() * pause);
    for (let n = 0; !o.until(); n++) {
      const key = `${o.ids.run}-b${b}-${n}`;
      for (let attempt = 0; !o.until() || attempt > 0; attempt++) {
        if (attempt > 40) break; // give up on this key (counted as never acknowledged)
        o.record.attempts++;
        if (attempt > 0) o.record.retries++;
        const gw = o.gateways[(b + attempt) % o.gateways.length]!;
        const r = await request(gw, 'POST', '/v1/purchases', { items: [{ sku: o.ids.hot, qty: 1 }] }, { ...as, 'Idempotency-Key': key });
        count(r.status === 0 ? 'network' : `${r.status}${r.body.error ? ` ${String(r.body.error)}` : ''}`);
        if (r.status === 201) {
          const orderId = String(r.body.orderId);
          const prior = o.record.acked.get(key);
          if (prior && prior !== orderId) o.record.conflictingAcks.push({ key, first: prior, second: orderId });
          else o.record.acked.set(key, orderId);
          if (o.random() < o.cancelShare) {
            for (let c = 0; c < 20; c++) {
              const x = await request(o.gateways[c % o.gateways.length]!, 'POST', `/v1/orders/${orderId}/cancel`, undefined, as);
              if (x.status === 200) {
                o.record.cancelled.add(orderId);
                break;
              }
              if (x.status === 409 || x.status === 404) break;
              await sleep(250 * (c + 1));
            }
          }
          break;
        }
        if (r.status === 409 && r.body.error === 'sold_out') {
          o.record.soldOutAt.push(Date.now());
          break;
        }
        if (r.status === 409 && r.body.error === 'customer_limit') return;
        if (r.status === 0 || r.status >= 500 || r.status === 429 || (r.status === 409 && r.body.error === 'idempotency_in_progress')) {
          await sleep(retryAfterMs(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 4))));
          continue;
        }
        break; // any other answer is final for this key
      }
      await sleep(pause * (0.5 + o.random()));
    }
  };
  await Promise.all(Array.from({ length: o.buyers }, (_, b) => buyer(b)));
}

// ---------------------------------------------------------------------------------------------
// WMS adjustments

export interface AdjustmentRecord {
  /** Acknowledged adjustment ids → (sku, location, on-hand delta). */
  acked: Map<string, { sku: string; locationId: string; delta: number }>;
  sent: number;
  duplicatesSent: number;
  failedSends: number;
  refused: Map<string, number>;
}

export function newAdjustmentRecord(): AdjustmentRecord {
  return { acked: new Map(), sent: 0, duplicatesSent: 0, failedSends: 0, refused: new Map() };
}

export async function runAdjustments(o: {
  ids: RunIds;
  producer: Producer;
  codecs: StockCodecs;
  gateways: string[];
  apiKey: string | undefined;
  ratePerSec: number;
  random: () => number;
  until: () => boolean;
  record: AdjustmentRecord;
}): Promise<void> {
  if (o.ratePerSec <= 0) return;
  const pending: StockAdjustment[] = [];
  let seq = 0;
  const kinds = [
    ['RECEIPT', 1],
    ['PICK', -1],
    ['DAMAGE', -1],
    ['RETURN', 1],
  ] as const;
  const send = async (a: StockAdjustment, delta: number): Promise<boolean> => {
    o.record.sent++;
    const viaHttp = o.apiKey !== undefined && o.random() < 0.3;
    if (viaHttp) {
      const r = await request(o.gateways[Math.floor(o.random() * o.gateways.length)]!, 'POST', '/v1/adjustments', a, { authorization: `Bearer ${o.apiKey}` });
      if (r.status === 201 || r.status === 200) {
        o.record.acked.set(a.adjustmentId, { sku: a.sku, locationId: a.locationId, delta });
        return true;
      }
      if (r.status >= 400 && r.status < 500) {
        o.record.refused.set(String(r.body.error), (o.record.refused.get(String(r.body.error)) ?? 0) + 1);
        return true; // refused: nothing applied, nothing to resend
      }
      o.record.failedSends++;
      return false;
    }
    try {
      await o.producer.send({ topic: TOPICS.stockAdjustments, messages: [{ key: a.sku, value: await o.codecs.stockAdjustment.encode(a) }] });
      o.record.acked.set(a.adjustmentId, { sku: a.sku, locationId: a.locationId, delta });
      return true;
    } catch {
      o.record.failedSends++;
      return false;
    }
  };
  const deltaOf = (a: StockAdjustment) => (a.kind === 'PICK' || a.kind === 'DAMAGE' ? -a.quantity : a.quantity);
  const interval = 1000 / o.ratePerSec;
  while (!o.until() || pending.length > 0) {
    const t = Date.now();
    if (pending.length > 0) {
      const a = pending[0]!;
      if (await send(a, deltaOf(a))) pending.shift();
      else await sleep(500);
    }
    if (!o.until()) {
      const [kind] = kinds[Math.floor(o.random() * kinds.length)]!;
      const a: StockAdjustment = {
        adjustmentId: `${o.ids.run}-adj-${++seq}`,
        sku: o.ids.adj[Math.floor(o.random() * o.ids.adj.length)]!,
        locationId: o.ids.locations[Math.floor(o.random() * 2)]!,
        kind,
        quantity: 1 + Math.floor(o.random() * 5),
        toLocationId: null,
        occurredAt: Date.now(),
        sourceSystem: `${o.ids.run}-wms`,
        reference: null,
        expectedOnHand: null,
        expectedVersion: null,
        countedAt: null,
      };
      if (!(await send(a, deltaOf(a)))) pending.push(a);
      else if (o.random() < 0.2) {
        o.record.duplicatesSent++;
        if (!(await send(a, deltaOf(a)))) pending.push(a);
      }
    }
    await sleep(Math.max(0, interval - (Date.now() - t)));
  }
}

// ---------------------------------------------------------------------------------------------
// ERP: plain SQL

export interface ErpRecord {
  committed: number;
  failed: number;
}

export async function runErp(o: { ids: RunIds; pool: pg.Pool; ratePerSec: number; random: () => number; until: () => boolean; record: ErpRecord }): Promise<void> {
  if (o.ratePerSec <= 0) return;
  const interval = 1000 / o.ratePerSec;
  while (!o.until()) {
    const t = Date.now();
    const sku = o.ids.erp[Math.floor(o.random() * o.ids.erp.length)]!;
    const both = o.random() < 0.3;
    const values = [50 + Math.floor(o.random() * 450), 50 + Math.floor(o.random() * 450)];
    try {
      await o.pool.query(
        both
          ? `UPDATE stock_levels SET on_hand = CASE location_id WHEN $2 THEN $4::int ELSE $5::int END WHERE sku = $1 AND location_id IN ($2, $3)`
          : `UPDATE stock_levels SET on_hand = $4::int WHERE sku = $1 AND location_id = $2 AND $3::text IS NOT NULL AND $5::int IS NOT NULL`,
        [sku, o.ids.locations[0], o.ids.locations[1], values[0], values[1]],
      );
      o.record.committed++;
    } catch {
      o.record.failed++;
    }
    await sleep(Math.max(0, interval - (Date.now() - t)));
  }
}

// ---------------------------------------------------------------------------------------------
// probe and subscribers

export interface ProbeRecord {
  /** seq → time the write started (ms epoch), for writes that committed. */
  committed: Map<number, number>;
  /** seq → first arrival time at any subscriber, and at each subscriber. */
  firstArrival: Map<number, number>;
}

export function newProbeRecord(): ProbeRecord {
  return { committed: new Map(), firstArrival: new Map() };
}

export async function runProbe(o: { ids: RunIds; pool: pg.Pool; everyMs: number; until: () => boolean; record: ProbeRecord }): Promise<void> {
  for (let seq = 1; !o.until(); seq++) {
    const started = Date.now();
    try {
      await o.pool.query(`UPDATE stock_levels SET on_hand = $3 WHERE sku = $1 AND location_id = $2`, [o.ids.probe, o.ids.locations[0], PROBE_BASE + seq]);
      o.record.committed.set(seq, started);
    } catch {
      // Postgres down: this change never happened.
    }
    await sleep(Math.max(0, o.everyMs - (Date.now() - started)));
  }
}

export interface Subscriber {
  gateway: string;
  client: StockClient;
  items(): Map<string, StockItem>;
  reconnects: number;
}

export function startSubscribers(o: { ids: RunIds; gateways: string[]; count: number; probe: ProbeRecord }): Subscriber[] {
  const skus = allSkus(o.ids);
  const out: Subscriber[] = [];
  for (let i = 0; i < o.count; i++) {
    const gateway = o.gateways[i % o.gateways.length]!;
    const client = new StockClient({
      url: `${gateway.replace(/^http/, 'ws')}/v1/stream`,
      channel: 'storefront',
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    const s: Subscriber = { gateway, client, items: () => new Map(client.items().map((it) => [it.sku, it])), reconnects: 0 };
    client.on('error', () => undefined);
    client.on('state', (state) => {
      if (state === 'connecting') s.reconnects++;
    });
    client.on('item', (item) => {
      if (item.sku !== o.ids.probe) return;
      const seq = item.available - PROBE_BASE;
      if (seq > 0 && !o.probe.firstArrival.has(seq)) o.probe.firstArrival.set(seq, Date.now());
    });
    client.subscribe(skus);
    out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// orders.events

export interface EventRecord {
  /** orderId → event types seen. */
  byOrder: Map<string, string[]>;
  /** event id → times seen. */
  ids: Map<string, number>;
}

export async function watchOrderEvents(kafka: Kafka, groupId: string, customerPrefix: string): Promise<{ record: EventRecord; consumer: Consumer }> {
  const record: EventRecord = { byOrder: new Map(), ids: new Map() };
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, retry: { retries: 100, initialRetryTime: 200, maxRetryTime: 2000 } });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPICS.ordersEvents, fromBeginning: false });
  let joined!: () => void;
  const ready = new Promise<void>((r) => (joined = r));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.run({
    eachMessage: async ({ message }) => {
      let payload: { type?: string; orderId?: string; customerId?: string } = {};
      try {
        const text = message.value?.toString('utf8') ?? '';
        const parsed = JSON.parse(text) as unknown;
        payload = (typeof parsed === 'string' ? JSON.parse(parsed) : parsed) as typeof payload;
      } catch {
        return;
      }
      if (!payload.customerId?.startsWith(customerPrefix) || !payload.orderId) return;
      const id = message.headers?.id?.toString() ?? `${payload.orderId}/${payload.type}`;
      record.ids.set(id, (record.ids.get(id) ?? 0) + 1);
      const list = record.byOrder.get(payload.orderId) ?? [];
      list.push(String(payload.type));
      record.byOrder.set(payload.orderId, list);
    },
  });
  await ready;
  return { record, consumer };
}
