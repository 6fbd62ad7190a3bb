/**
 * `npm run gateway`: runs a gateway on its own (start several behind a load balancer). With
 * GATEWAY_WORKERS > 1 the process forks that many gateways sharing the port (node:cluster: the
 * primary accepts connections and hands them out round-robin); each worker is a complete,
 * independent gateway — it reads the whole feed, runs its own purchase workers — exactly like
 * separate processes behind a load balancer, so nothing else changes. A worker that dies is
 * replaced.
 */
import cluster from 'node:cluster';
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { startGatewayService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-gateway' });

if (config.gateway.workers > 1 && cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < config.gateway.workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'gateway worker exited; starting another');
    cluster.fork();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  logger.info({ workers: config.gateway.workers, port: config.gateway.port }, 'gateway primary started its workers');
} else {
  try {
    const gw = await startGatewayService(config, logger);
    logger.info({ url: gw.url, demo: `${gw.url}/`, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) }, 'gateway running');
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
}
