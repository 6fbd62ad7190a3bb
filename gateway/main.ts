/** `npm run gateway`: runs a gateway on its own (start several behind a load balancer). */
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { startGatewayService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-gateway' });
try {
  const gw = await startGatewayService(config, logger);
  logger.info({ url: gw.url, demo: `${gw.url}/` }, 'gateway running');
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    gw.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  logger.fatal({ err: errorMessage(err) }, e.code === 'EADDRINUSE' ? `port ${config.gateway.port} is in use: set GATEWAY_PORT` : 'gateway failed to start');
  process.exit(1);
}
