/**
 * `npm run processor`: runs the stock processor on its own (scale out by starting more; the
 * instances of one PROCESSOR_GROUP_ID share the CDC topic's partitions). Stops cleanly on
 * SIGINT/SIGTERM: the current batch finishes and its offsets are committed.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { runService } from '../lib/run-service.ts';
import { startProcessorService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-processor' });

await runService({
  logger,
  what: 'stock processor',
  start: () => startProcessorService(config, logger),
  stopBoundMs: config.lifecycle.drainTimeoutMs + 5000,
  describe: async (s) => ({ partitions: (await s.processor.joined).partitions, metricsPort: s.metricsPort }),
});
