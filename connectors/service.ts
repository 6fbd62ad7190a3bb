/**
 * The connectors as a running service: WMS/ERP in and out. Inbound: the `stock.adjustments`
 * consumer (connectors/inbound), applying adjustments to Postgres exactly once. Outbound: the
 * mappings that republish stock and order events for downstream systems (see the marked spot
 * below). Used by `npm run connectors` (standalone) and by `npm start` (in the platform process).
 * Scale out by starting more: instances of one CONNECTOR_INBOUND_GROUP_ID share the partitions.
 */
import { createSchemaRegistry, loadAvroSchema, registerStockSchemas } from '../lib/avro-registry.ts';
import type { Config } from '../lib/config.ts';
import { Housekeeper, outboxSlotName } from '../lib/housekeeping.ts';
import { createKafka } from '../lib/kafka.ts';
import type { Logger } from '../lib/logger.ts';
import { startMetricsServer, type MetricsServer } from '../lib/metrics-server.ts';
import { createPgPool } from '../lib/pg.ts';
import { AvroRecordDecoder } from './inbound/adapters/avro-decoder.ts';
import { AdjustmentStore } from './inbound/adapters/pg-adjustments.ts';
import { loadMappingFile, startOutboundMappings } from './outbound/service.ts';
import { startInboundConsumer, type InboundConsumer } from './inbound/consumer.ts';
import { startMovementRelay } from './ledger/relay.ts';
import { createInboundMetrics } from './inbound/metrics.ts';

export interface ConnectorsService {
  inbound: InboundConsumer;
  /** The port of /metrics, /healthz and /readyz, or null when disabled. */
  metricsPort: number | null;
  stop(): Promise<void>;
}

export async function startConnectorsService(
  config: Readonly<Config>,
  logger: Logger,
  overrides: { metricsPort?: number; metricsDefaults?: boolean } = {},
): Promise<ConnectorsService> {
  const log = logger.child({ component: 'connectors-service' });
  // A bad mapping file stops start-up before anything joins a consumer group.
  if (config.outbound.mappingsFile !== undefined) loadMappingFile(config.outbound.mappingsFile);
  // Makes sure the subjects exist with BACKWARD compatibility (idempotent; also what outbound encodes with).
  const codecs = await registerStockSchemas(config.registry);
  const pool = createPgPool(config.pg.url, { max: config.inbound.pgPool, application: 'invsync-connectors' });
  pool.on('error', (err) => log.warn({ err: err.message }, 'postgres connection error'));
  const kafka = createKafka({ connection: config.kafka, clientId: `invsync-connectors-${process.pid}`, logger });
  const metrics = createInboundMetrics({ defaults: overrides.metricsDefaults ?? true });

  const inbound = await startInboundConsumer({
    kafka,
    store: new AdjustmentStore({ pool, onRetry: () => metrics.retries.inc() }),
    decoder: new AvroRecordDecoder({ registry: createSchemaRegistry(config.registry), readerSchema: loadAvroSchema('StockAdjustment') }),
    logger,
    metrics,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    groupId: config.inbound.groupId,
    fromBeginning: config.inbound.startFrom === 'earliest',
    batchMax: config.inbound.batchMax,
  });

  // Outbound mappings (docs/outbound-mappings.md): channel-specific topics declared in
  // CONNECTOR_MAPPINGS_FILE; none when it is unset.
  const stops: Array<() => Promise<void>> = [];
  try {
    const outbound = await startOutboundMappings({ config, logger, kafka, metricsRegistry: metrics.registry });
    stops.push(() => outbound.stop());
  } catch (err) {
    await inbound.stop();
    await pool.end().catch(() => undefined);
    throw err;
  }

  // The movement ledger on Kafka (docs/ledger.md): stock rows' change events → their movements → stock.movements.
  try {
    const relay = await startMovementRelay({
      kafka,
      pool,
      codec: codecs.stockMovement,
      logger,
      registry: metrics.registry,
      sessionTimeoutMs: config.kafka.sessionTimeoutMs,
      groupId: config.movements.groupId,
      fromBeginning: config.movements.startFrom === 'earliest',
      batchWaitMs: config.movements.batchWaitMs,
    });
    stops.unshift(() => relay.stop());
  } catch (err) {
    for (const s of stops) await s().catch(() => undefined);
    await inbound.stop();
    await pool.end().catch(() => undefined);
    throw err;
  }

  // Housekeeping (lib/housekeeping.ts): pruning on a schedule, one instance at a time.
  let housekeeper: Housekeeper | undefined;
  if (config.housekeeping.intervalMs > 0) {
    const h = config.housekeeping;
    housekeeper = new Housekeeper({
      pool,
      logger,
      registry: metrics.registry,
      outboxSlot: outboxSlotName(),
      retention: { outboxMs: h.outboxRetentionMs, adjustmentsMs: h.adjustmentsRetentionMs, idempotencyMs: h.idempotencyRetentionMs, movementsMs: h.movementsRetentionMs },
    });
    housekeeper.start(h.intervalMs);
  }

  let stopping = false;
  let server: MetricsServer | undefined;
  const metricsPort = overrides.metricsPort ?? config.connectors.metricsPort;
  if (metricsPort > 0) server = await startMetricsServer({ registry: metrics.registry, port: metricsPort, ready: () => !stopping && inbound.isReady() });

  return {
    inbound,
    metricsPort: server?.port ?? null,
    async stop() {
      // Readiness goes red first; then the work in progress finishes (the inbound consumer's
      // current batch is applied and committed by its disconnect).
      stopping = true;
      await housekeeper?.stop();
      for (const s of stops) await s().catch((err: Error) => log.warn({ err: err.message }, 'an outbound mapping did not stop cleanly'));
      await inbound.stop();
      await server?.close();
      await pool.end().catch(() => undefined);
    },
  };
}
