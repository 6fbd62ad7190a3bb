/**
 * The movement relay (docs/ledger.md): publishes the movement ledger on `stock.movements` (Avro
 * StockMovement, key = sku), in commit order per SKU.
 *
 * It follows the stock rows' own change events (`cdc.public.stock_levels`, in its own consumer
 * group) rather than capturing the ledger table: each event names a row and version, and the
 * movement of that (sku, location, version) is read from `stock_movements` — written in the same
 * transaction, so committed by the time its event arrives — one query per batch. Debezium then
 * carries no extra event per change, which is what a captured ledger table cost the latency path
 * (docs/benchmarks.md). A change that moved no bucket (a delete re-stamping a SKU's other rows)
 * has no movement and publishes nothing. Movements are produced before the offsets move: at least
 * once; `movementId` identifies a duplicate. An event that does not decode is dead-lettered;
 * Postgres, the registry or Kafka being away fails the batch and kafkajs retries it. Instances of
 * one group share the partitions.
 */
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AvroCodec } from '../../lib/avro-registry.ts';
import { movementFromRow, type MovementRow } from '../../lib/contracts/movements.ts';
import { fromPgError } from '../../lib/driver-errors.ts';
import { startKafkaStage, type RunningStage } from '../../lib/kafka-stage.ts';
import type { Logger } from '../../lib/logger.ts';
import { TOPICS } from '../../lib/topics.ts';
import type { StockMovement } from '../../schemas/generated/avro-types.ts';
import { movementKeyFromCdc, toStockMovement, type MovementKey } from './movement-event.ts';

export const DEFAULT_MOVEMENTS_GROUP_ID = 'invsync-movement-relay';

export interface MovementRelayDeps {
  kafka: Kafka;
  pool: pg.Pool;
  codec: AvroCodec<StockMovement>;
  logger: Logger;
  registry: Registry;
  groupId?: string;
  /** Private topics for tests; the platform's by default. */
  topics?: { source?: string; target?: string; dlq?: string };
  sessionTimeoutMs?: number;
  /** A new group starts at the source's beginning (the default) or its end (tests). */
  fromBeginning?: boolean;
  /**
   * How long a fetch may wait to gather a batch (CONNECTOR_MOVEMENTS_BATCH_WAIT_MS, 250 ms by
   * default; it returns sooner once BATCH_MIN_BYTES are there). The ledger's readers (ERP, audit)
   * do not wait on it the way a storefront waits on the views, and per batch the relay pays a
   * query, a produce request and their socket writes: at 400 changes/s and the stage's default
   * (answer at the first byte) its batches held one or two events and it used as much CPU as the
   * processor, on the same cores.
   */
  batchWaitMs?: number;
}

/** A fetch returns once this much is there (tens of change events), or after batchWaitMs. */
export const BATCH_MIN_BYTES = 64 * 1024;
export const DEFAULT_BATCH_WAIT_MS = 250;

export interface MovementRelay extends RunningStage {
  /** Movements published since start. */
  published(): number;
}

interface Encoded {
  movement: StockMovement;
  value: Buffer;
}

const key = (k: { sku: string; locationId: string; version: number }) => `${k.sku}\u0000${k.locationId}\u0000${k.version}`;

/** The movements of the given row versions, by key (a version may have a `resync` movement besides its own). */
async function readMovements(pool: pg.Pool, keys: readonly MovementKey[]): Promise<Map<string, StockMovement[]>> {
  let rows: MovementRow[];
  try {
    ({ rows } = await pool.query<MovementRow>(
      `SELECT m.* FROM stock_movements m
         JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(sku, location_id, version)
           ON m.sku = k.sku AND m.location_id = k.location_id AND m.version = k.version
        ORDER BY m.movement_id`,
      [keys.map((k) => k.sku), keys.map((k) => k.locationId), keys.map((k) => k.version)],
    ));
  } catch (err) {
    throw fromPgError(err);
  }
  const out = new Map<string, StockMovement[]>();
  for (const r of rows) {
    const m = toStockMovement(movementFromRow(r));
    const list = out.get(key(m)) ?? [];
    list.push(m);
    out.set(key(m), list);
  }
  return out;
}

export async function startMovementRelay(deps: MovementRelayDeps): Promise<MovementRelay> {
  const target = deps.topics?.target ?? TOPICS.stockMovements;
  const groupId = deps.groupId ?? DEFAULT_MOVEMENTS_GROUP_ID;
  const log = deps.logger.child({ component: 'movement-relay', group: groupId });
  const metrics = {
    published: new Counter({ name: 'invsync_connectors_movements_published_total', help: 'Ledger movements published on stock.movements', registers: [deps.registry] }),
    dlq: new Counter({ name: 'invsync_connectors_movements_dlq_total', help: 'Stock change events the relay sent to inventory.dlq, by reason', labelNames: ['reason'], registers: [deps.registry] }),
    batchApply: new Histogram({
      name: 'invsync_connectors_movements_batch_seconds',
      help: 'Time to read, encode and publish the movements of one batch of stock change events',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [deps.registry],
    }),
    lag: new Gauge({ name: 'invsync_connectors_movements_lag', help: 'Stock change events not yet relayed, per partition', labelNames: ['topic', 'partition'], registers: [deps.registry] }),
  };
  let published = 0;
  const batchWait = deps.batchWaitMs ?? DEFAULT_BATCH_WAIT_MS;
  const stage = await startKafkaStage<MovementKey, Encoded[]>({
    kafka: deps.kafka,
    groupId,
    topic: deps.topics?.source ?? TOPICS.cdcStockLevels,
    dlqTopic: deps.topics?.dlq ?? TOPICS.dlq,
    fromBeginning: deps.fromBeginning ?? true,
    log,
    metrics,
    ...(deps.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    fetch: batchWait > 0 ? { minBytes: BATCH_MIN_BYTES, maxWaitTimeInMs: batchWait } : { minBytes: 1 },
    work: {
      reasons: { decode: 'undecodable stock change event', apply: 'movement not encodable' },
      decode: (message) => movementKeyFromCdc(message.value),
      async apply(items) {
        const found = await readMovements(deps.pool, items);
        return Promise.all(items.map(async (k) => Promise.all((found.get(key(k)) ?? []).map(async (movement) => ({ movement, value: await deps.codec.encode(movement) })))));
      },
      describe: (k) => ({ tags: { sku: k.sku, version: String(k.version) } }),
      async complete(done, ctx) {
        // A version's movements once per batch, even if the batch holds its event twice (a replay).
        const seen = new Set<number>();
        const messages = done.applied
          .flatMap((a) => a.result)
          .filter((e) => !seen.has(e.movement.movementId) && seen.add(e.movement.movementId))
          .map((e) => ({ key: e.movement.sku, value: e.value, headers: { 'invsync.movement-id': String(e.movement.movementId) } }));
        if (messages.length === 0) return;
        await ctx.send([{ topic: target, messages }]);
        published += messages.length;
        metrics.published.inc(messages.length);
      },
    },
  });
  return { ...stage, published: () => published };
}
