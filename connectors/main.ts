/**
 * `npm run connectors`: runs the WMS/ERP connectors on their own (scale out by starting more;
 * instances of one CONNECTOR_INBOUND_GROUP_ID share the `stock.adjustments` partitions). Stops
 * cleanly on SIGINT/SIGTERM: the current batch finishes and its offsets are committed.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { ConfigError, errorMessage } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { startConnectorsService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-connectors' });

try {
  const service = await startConnectorsService(config, logger);
  const { partitions } = await service.inbound.joined;
  logger.info({ partitions, metricsPort: service.metricsPort }, 'connectors running');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    service.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  // A bad mapping file is configuration: one line naming it, exit 2, like any bad variable.
  if (err instanceof ConfigError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(2);
  }
  logger.fatal({ err: errorMessage(err) }, 'connectors failed to start');
  process.exit(1);
}
