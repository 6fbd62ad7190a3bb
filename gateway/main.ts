/**
 * `npm run gateway`: runs a gateway on its own (start several behind a load balancer). With
 * GATEWAY_WORKERS > 1 the process forks that many gateways sharing the port (node:cluster: the
 * primary accepts connections and hands them out round-robin); each worker is a complete,
 * independent gateway — it reads the whole feed, runs its own purchase workers — exactly like
 * separate processes behind a load balancer, so nothing else changes. A worker that dies is
 * replaced.
 *
 * SIGTERM/SIGINT drain (docs/operations.md): readiness goes red, new connections are refused,
 * in-flight requests finish, WebSockets are closed with 1001 (reconnect), then exit 0.
 */
import cluster from 'node:cluster';
import { loadConfigOrExit } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { EXIT, installProcessPolicy, notifyReady, onStopRequest } from '../lib/process-policy.ts';
import { runService } from '../lib/run-service.ts';
import { startGatewayService } from './service.ts';

const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel, name: 'invsync-gateway' });
const stopBoundMs = config.lifecycle.readinessDelayMs + config.lifecycle.drainTimeoutMs + 5000;

if (config.gateway.workers > 1 && cluster.isPrimary) {
  installProcessPolicy({ logger, what: 'gateway primary' });
  let stopping = false;
  for (let i = 0; i < config.gateway.workers; i++) cluster.fork();
  cluster.once('listening', () => notifyReady({ url: `http://${config.gateway.host}:${config.gateway.port}`, workers: config.gateway.workers }));
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(EXIT.ok);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'gateway worker exited; starting another');
    cluster.fork();
  });
  onStopRequest(() => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(EXIT.failed), stopBoundMs).unref();
  });
  logger.info({ workers: config.gateway.workers, port: config.gateway.port }, 'gateway primary started its workers');
} else {
  await runService({
    logger,
    what: 'gateway',
    start: () => startGatewayService(config, logger),
    describe: async (gw) => ({ url: gw.url, port: gw.port, demo: `${gw.url}/`, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) }),
    stopBoundMs,
    explain: (err) => ((err as NodeJS.ErrnoException)?.code === 'EADDRINUSE' ? `port ${config.gateway.port} is in use: set GATEWAY_PORT` : undefined),
  });
}
