/**
 * `npm run connectors`: runs the WMS/ERP connectors on their own (scale out by starting more;
 * instances of one CONNECTOR_INBOUND_GROUP_ID share the `stock.adjustments` partitions). Stops
 * cleanly on SIGINT/SIGTERM: the current batch finishes and its offsets are committed. A bad
 * mapping file (CONNECTOR_MAPPINGS_FILE) is configuration: one line naming it, exit 2.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { runService } from '../lib/run-service.ts';
import { startConnectorsService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-connectors' });

await runService({
  logger,
  what: 'connectors',
  start: () => startConnectorsService(config, logger),
  stopBoundMs: config.lifecycle.drainTimeoutMs + 5000,
  describe: async (s) => ({ partitions: (await s.inbound.joined).partitions, metricsPort: s.metricsPort }),
});
