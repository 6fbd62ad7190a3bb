/**
 * The stock processor as a running service: wiring of config, clients, schemas, metrics, the
 * consume loop and periodic reconciliation. Used by `npm run processor` (standalone) and by
 * `npm start` (in the platform process).
 */
import type { Config } from '../lib/config.ts';
import { registerStockSchemas } from '../lib/avro-registry.ts';
import { errorMessage } from '../lib/errors.ts';
import { createKafka } from '../lib/kafka.ts';
import type { Logger } from '../lib/logger.ts';
import { startMetricsServer, type MetricsServer } from '../lib/metrics-server.ts';
import { createPgPool } from '../lib/pg.ts';
import { startChannelFigures } from './channel-figures.ts';
import { createRedis } from '../lib/redis.ts';
import { startThresholdCache } from './adapters/pg-alert-thresholds.ts';
import { RedisViews } from './adapters/redis-views.ts';
import { createCdcMetrics, createProcessorMetrics } from './metrics.ts';
import { CdcWatchdog, watchedSlotsFromConfig } from './cdc-watchdog.ts';
import { startStockProcessor, type StockProcessor } from './processor.ts';
import { createGateAudit } from '../purchase/gate-audit.ts';
import { reconcileViews } from './views-maintenance.ts';
import { watchEpoch } from './epoch.ts';
import { watchConnectors } from './connect-watchdog.ts';

export interface ProcessorService {
  processor: StockProcessor;
  metricsPort: number | null;
  stop(): Promise<void>;
}

export async function startProcessorService(config: Readonly<Config>, logger: Logger): Promise<ProcessorService> {
  const log = logger.child({ component: 'processor-service' });
  const codecs = await registerStockSchemas(config.registry);
  const redis = createRedis(config.redis);
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const kafka = createKafka({ connection: config.kafka, clientId: `invsync-processor-${process.pid}`, logger });
  const metrics = createProcessorMetrics();
  const pool = createPgPool(config.pg.url, { max: 3, application: 'invsync-reconcile' });
  // Sales channels (docs/channels.md): a newer configuration recomputes every SKU's channel
  // figures from its rows and republishes them on the feed.
  const figures = await startChannelFigures({ pool, redis, prefix: config.redis.prefix, feedMaxLen: config.processor.feedMaxLen, pollMs: config.channels.pollMs, log });
  const channels = figures.watcher;

  // Low-stock thresholds: loaded before the first batch, then reloaded periodically.
  const thresholds = await startThresholdCache({
    pool,
    defaultThreshold: config.processor.alerts.lowStockDefault,
    refreshMs: config.processor.alerts.thresholdsRefreshMs,
    log: log.child({ component: 'alert-thresholds' }),
  });
  const processor = await startStockProcessor({
    kafka,
    redis,
    codecs,
    logger,
    metrics,
    groupId: config.processor.groupId,
    fromBeginning: config.processor.startFrom === 'earliest',
    prefix: config.redis.prefix,
    feedMaxLen: config.processor.feedMaxLen,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    channels,
    onChannelsStale: figures.stale,
    alerts: { thresholds: thresholds.current, streamMaxLen: config.processor.alerts.streamMaxLen },
    coalesce: config.processor.coalesce,
  });
  let stopping = false;
  let server: MetricsServer | undefined;
  if (config.processor.metricsPort > 0) {
    server = await startMetricsServer({ registry: metrics.registry, port: config.processor.metricsPort, ready: () => !stopping && processor.isReady() });
  }

  // Periodic reconciliation with repair (invariant 2). Several instances may run it at once:
  // repairs are version-guarded, so that only costs work, never correctness.
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  // Redis that lost its data is rebuilt from Postgres before the gate sells again (epoch.ts).
  const p = config.purchase;
  const stopEpoch = watchEpoch({
    redis,
    pool,
    prefix: config.redis.prefix,
    feedMaxLen: config.processor.feedMaxLen,
    customerTtlS: Math.max(p.idempotencyTtlS, Math.ceil(p.holdTtlMs / 1000) * 2),
    intervalMs: config.processor.epochCheckMs,
    log,
    channels,
  });
  const stopWatchdog =
    config.processor.connectWatchdogMs > 0 ? watchConnectors({ connectUrl: config.connect.url, intervalMs: config.processor.connectWatchdogMs, log }) : async () => undefined;
  if (config.processor.reconcileIntervalMs > 0) {
    const views = new RedisViews({ redis, prefix: config.redis.prefix, channels });
    const gate = createGateAudit({ redis, prefix: config.redis.prefix });
    const tick = () => {
      running = reconcileViews({ pool, views, gate, feedMaxLen: config.processor.feedMaxLen }, { repair: true })
        .then((res) => {
          metrics.drift.set(res.drift.length + res.gateDrift.length + res.channelDrift.length);
          metrics.reconcileRuns.inc({ result: 'ok' });
          const fields = { checked: res.checkedRows, drift: res.drift.length, gateDrift: res.gateDrift.length, channelDrift: res.channelDrift.length, repaired: res.repaired, transient: res.transient, seconds: res.seconds };
          if (res.drift.length || res.gateDrift.length || res.channelDrift.length) log.warn(fields, 'reconciliation repaired drift');
          else log.info(fields, 'reconciliation: no drift');
        })
        .catch((err: unknown) => {
          metrics.reconcileRuns.inc({ result: 'error' });
          log.warn({ err: errorMessage(err) }, 'reconciliation failed; will retry next interval');
        })
        .finally(() => {
          running = undefined;
          timer = setTimeout(tick, config.processor.reconcileIntervalMs);
        });
    };
    timer = setTimeout(tick, config.processor.reconcileIntervalMs);
  }

  // Replication-slot metrics and the lost-slot watchdog (docs/reliability.md#cdc-heartbeats-slot-health-lost-slot-recovery).
  let watchdog: CdcWatchdog | undefined;
  if (config.cdc.watchdogIntervalMs > 0) {
    const views = new RedisViews({ redis, prefix: config.redis.prefix, channels });
    const gate = createGateAudit({ redis, prefix: config.redis.prefix });
    watchdog = new CdcWatchdog({
      pool,
      logger,
      metrics: createCdcMetrics(metrics.registry),
      connectUrl: config.connect.url,
      slots: watchedSlotsFromConfig(),
      intervalMs: config.cdc.watchdogIntervalMs,
      settleMs: config.cdc.snapshotSettleMs,
      timeoutMs: config.cdc.snapshotTimeoutMs,
      thresholds: { retainedWarnBytes: config.cdc.retainedWarnBytes, retainedCriticalBytes: config.cdc.retainedCriticalBytes },
      reconcile: async () => {
        const res = await reconcileViews({ pool, views, gate, feedMaxLen: config.processor.feedMaxLen }, { repair: true });
        metrics.drift.set(res.drift.length + res.gateDrift.length + res.channelDrift.length);
        metrics.reconcileRuns.inc({ result: 'ok' });
        log.warn({ checked: res.checkedRows, drift: res.drift.length, gateDrift: res.gateDrift.length, repaired: res.repaired }, 'reconciliation after slot recovery');
      },
    });
    watchdog.start();
  }

  return {
    processor,
    metricsPort: server?.port ?? null,
    async stop() {
      // Readiness red first; a reconciliation in progress finishes, then the current batch is
      // applied and its offsets committed (the consumer's disconnect waits for it).
      stopping = true;
      if (timer) clearTimeout(timer);
      channels.stop();
      await stopEpoch();
      await stopWatchdog();
      await running;
      await watchdog?.stop();
      await processor.stop();
      thresholds.stop();
      await server?.close();
      await pool.end().catch(() => undefined);
      redis.disconnect();
    },
  };
}
