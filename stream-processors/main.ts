/**
 * `npm run processor`: runs the stock processor on its own (scale out by starting more; the
 * instances of one PROCESSOR_GROUP_ID share the CDC topic's partitions). Stops cleanly on
 * SIGINT/SIGTERM: the current batch finishes and its offsets are committed.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { startProcessorService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-processor' });

try {
  const service = await startProcessorService(config, logger);
  const { partitions } = await service.processor.joined;
  logger.info({ partitions, metricsPort: service.metricsPort }, 'stock processor running');
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
  logger.fatal({ err: errorMessage(err) }, 'stock processor failed to start');
  process.exit(1);
}
