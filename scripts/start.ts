/**
 * `npm start`: the main job. Brings the stack up (native by default, or checks the external
 * services when STACK=external), applies migrations, seeds the demo catalog, starts the
 * platform's own processes and prints where to look. Ctrl-C stops the platform's processes;
 * the stack keeps running (`npm run stack -- down` stops it).
 *
 * Platform processes so far: the stock processor (CDC -> Redis views, stock.deltas,
 * stock.levels), whose view updates are tailed live on the console, the gateway (HTTP API,
 * WebSocket feed, storefront demo page) and the connectors (stock.adjustments from WMS/ERP applied
 * to Postgres exactly once).
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage, PlatformError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { createPgPool } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { seedCatalog } from '../lib/seed.ts';
import { renderStatus, stackUp } from '../stack/stack.ts';
import { viewKeys } from '../stream-processors/adapters/redis-views.ts';
import { startConnectorsService } from '../connectors/service.ts';
import { startGatewayService } from '../gateway/service.ts';
import { startFeedTail } from '../stream-processors/feed-tail.ts';
import { startProcessorService } from '../stream-processors/service.ts';

let config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'invsync' });
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  say(`invsync: starting the platform (${config.stack.mode} stack)`);
  const up = await stackUp(config, say);
  // The first `up` of a native stack generates its credentials: continue with the configuration that has them.
  config = up.config;
  const { status, seconds } = up;
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-start' });
  try {
    const { inserted } = await seedCatalog(pool, config.seed);
    say(`  seed      demo catalog ${config.seed.skus} SKUs x ${config.seed.locations} locations (${inserted} new rows)`);
  } finally {
    await pool.end();
  }
  const processor = await startProcessorService(config, logger);
  const { partitions } = await processor.processor.joined;
  say(`  processor stock processor running (group ${config.processor.groupId}, CDC partitions ${partitions.join(',')})`);
  const gateway = await startGatewayService(config, logger);
  say(`  gateway   HTTP + WebSocket on ${gateway.url}`);
  const connectors = await startConnectorsService(config, logger);
  say(`  connectors stock.adjustments -> Postgres (group ${config.inbound.groupId}; POST ${gateway.url}/v1/adjustments is its HTTP twin)`);

  say(`\n${renderStatus(status)}\n`);
  say(`platform up in ${(performance.now() / 1000).toFixed(1)}s (stack ${seconds.toFixed(1)}s). Where to look:`);
  say(`  storefront demo: ${gateway.url}/        (live availability grid)`);
  say(`  stock API:       curl ${gateway.url}/v1/stock/SKU-000001`);
  say(`  WebSocket feed:  ws://${config.gateway.host}:${gateway.port}/v1/stream?channel=storefront   (docs/websocket.md)`);
  // Credentials are never printed: `stack url` hands them to the tool on request (docs/stack.md).
  say(`  change stock:    psql "$(npm run -s stack -- url pg)" -c "UPDATE stock_levels SET on_hand = on_hand + 5 WHERE sku = 'SKU-000001' AND location_id = 'WH-1'"`);
  say(`  read a view:     redis-cli -u "$(npm run -s stack -- url redis)" --no-auth-warning HGETALL '${viewKeys(config.redis.prefix).summary('SKU-000001')}'`);
  if (processor.metricsPort) say(`  metrics:         http://127.0.0.1:${processor.metricsPort}/metrics`);
  say(`  adjust stock:    curl -X POST ${gateway.url}/v1/adjustments -H 'Authorization: Bearer ${config.gateway.devKeys ? 'dev-wms-key' : '<wms key>'}' -H 'content-type: application/json' -d '{"adjustmentId":"demo-'$(date +%s%N)'","sku":"SKU-000001","locationId":"WH-1","kind":"RECEIPT","quantity":5,"occurredAt":'$(date +%s%3N)',"sourceSystem":"me"}'   (docs/connectors.md)`);
  say(`  buy:             curl -X POST ${gateway.url}/v1/purchases -H "Idempotency-Key: $(date +%s%N)" -H 'content-type: application/json' -d '{"customerId":"me","items":[{"sku":"SKU-000001","qty":1}]}'   (docs/purchase-path.md)`);
  say(`  traffic:         npm run simulate -- flash-sale | shoppers | wms | erp     (watch the demo page; docs/inspect-and-simulate.md)`);
  say(`  topics:          npm run inspect -- topics | lag | connectors | orders.events`);
  say(`  views vs truth:  npm run views -- reconcile      (rebuild: npm run views -- rebuild)`);
  say(`  raw CDC events:  npm run tail`);
  say(`  stack health:    npm run stack -- status      (stop everything: npm run stack -- down)`);
  say(`  logs:            ${config.stack.dir}/logs`);
  say(`\nlive: Redis views as the processor updates them from committed changes; Ctrl-C to stop\n`);
  const redis = createRedis(config.redis.url);
  redis.on('error', () => undefined);
  const tail = startFeedTail({ redis, feedKey: viewKeys(config.redis.prefix).feed, write: say });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping platform processes`);
    await tail.stop().catch(() => undefined);
    await connectors.stop().catch(() => undefined);
    await gateway.stop().catch(() => undefined);
    await processor.stop().catch(() => undefined);
    redis.disconnect();
    say(config.stack.mode === 'native' ? 'stack still running; stop it with: npm run stack -- down' : 'done');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  if (!(err instanceof PlatformError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  if (config.stack.mode === 'native') process.stderr.write('(stop what was started with: npm run stack -- down)\n');
  process.exit(1);
});
