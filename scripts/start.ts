/**
 * `npm start`: the main job. Brings the stack up (native by default, or checks the external
 * services when STACK=external), applies migrations, seeds the demo catalog, starts the
 * platform's own processes and prints where to look. Ctrl-C stops the platform's processes;
 * the stack keeps running (`npm run stack -- down` stops it).
 *
 * Until the stream processors and the gateway exist, the platform process is a live tail of
 * committed stock changes coming off the CDC topic.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage, PlatformError } from '../lib/errors.ts';
import { createKafka } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { createPgPool } from '../lib/pg.ts';
import { seedCatalog } from '../lib/seed.ts';
import { renderStatus, stackUp } from '../stack/stack.ts';
import { startCdcTail } from '../stream-processors/cdc-tail.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'invsync' });
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  say(`invsync: starting the platform (${config.stack.mode} stack)`);
  const { status, seconds } = await stackUp(config, say);
  const pool = createPgPool(config.pg.url, { max: 2, application: 'invsync-start' });
  try {
    const { inserted } = await seedCatalog(pool, config.seed);
    say(`  seed      demo catalog ${config.seed.skus} SKUs x ${config.seed.locations} locations (${inserted} new rows)`);
  } finally {
    await pool.end();
  }
  say(`\n${renderStatus(status)}\n`);
  say(`platform up in ${seconds.toFixed(1)}s. Where to look:`);
  say(`  change stock:   psql ${config.pg.url.replace(/:[^:@/]*@/, '@')} -c "UPDATE stock_levels SET on_hand = on_hand + 5 WHERE sku = 'SKU-000001' AND location_id = 'WH-1'"`);
  say(`  stack health:   npm run stack -- status      (stop everything: npm run stack -- down)`);
  say(`  logs:           ${config.stack.dir}/logs`);
  say(`\nlive tail of committed stock changes (Postgres -> Debezium -> Kafka topic cdc.public.stock_levels); Ctrl-C to stop:\n`);
  const kafka = createKafka({ brokers: config.kafka.brokers, clientId: 'invsync-start', logger });
  const tail = await startCdcTail({ kafka, logger, write: say });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping platform processes`);
    await tail.stop().catch(() => undefined);
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
